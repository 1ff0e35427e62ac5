# schema-to-c.awk - turns the audit database schema files into C source, so
# that the program carries its schema and needs no data file at run time.
#
#   awk -f sql/schema-to-c.awk sql/schema/001-initial.sql ... > src/store/audit_schema.c
#
# Makefile.am runs it with every sql/schema file, in order. Each file
# becomes one entry of hs_audit_schema[] (audit.h): its version (the
# number the name starts with), its name and its text as one C string
# literal, line by line. Plain POSIX awk on purpose (Debian's mawk runs it):
# no tool outside build-essential, and the characters C needs escaped are
# escaped one by one instead of with gsub, whose backslash handling differs
# between awks. The file names must be NNN-name.sql numbered 001, 002, ...
# without gaps, and the last number must be HS_AUDIT_SCHEMA_VERSION: a
# static assertion in the output stops the build otherwise.

function fail(msg) {
    print "schema-to-c.awk: " msg > "/dev/stderr"
    failed = 1
    exit 1
}

# s as the inside of a C string literal.
function c_string(s,    out, i, c) {
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"")
            out = out "\\" c
        else if (c == "\t")
            out = out "\\t"
        else if (c == "?")
            out = out "\\?" # never a trigraph, whatever -std says
        else if (c != "\r")
            out = out c
    }
    return out
}

BEGIN {
    count = 0
    print "/* audit_schema.c - generated from sql/schema/NNN-*.sql by sql/schema-to-c.awk"
    print " * (see Makefile.am); do not edit: edit the .sql files. The audit"
    print " * database schema, compiled in so that hemoscan needs no data file to"
    print " * create or upgrade a database. */"
    print "#include \"hemoscan/audit.h\""
    print ""
    print "const hs_audit_migration hs_audit_schema[] = {"
}

FNR == 1 {
    if (count > 0)
        print "    },"
    name = FILENAME
    sub(/.*\//, "", name)
    if (name !~ /^[0-9][0-9][0-9]-[A-Za-z0-9_-]+\.sql$/)
        fail(FILENAME ": schema files are named NNN-name.sql")
    version = substr(name, 1, 3) + 0
    if (version != count + 1)
        fail(FILENAME ": expected schema version " (count + 1) " (files numbered 001, 002, ... without gaps, given in order)")
    count++
    print "    {" version ", \"" c_string(name) "\","
}

{
    print "     \"" c_string($0) "\\n\""
}

END {
    if (failed)
        exit 1
    if (count == 0)
        fail("no schema file given")
    print "    },"
    print "};"
    print ""
    print "const int hs_audit_schema_count = " count ";"
    print ""
    print "_Static_assert(" count " == HS_AUDIT_SCHEMA_VERSION,"
    print "               \"sql/schema's last file must be version HS_AUDIT_SCHEMA_VERSION (audit.h)\");"
}
