#!/bin/sh
# missing-test-libs.sh - stands in for tests/unit_tests when ./configure
# found no CUnit or zlib (only make check needs them): fails at once,
# naming the Debian packages to install, instead of skipping the unit tests.
missing=${HEMOSCAN_MISSING_TEST_PACKAGES:-libcunit1-dev zlib1g-dev}
echo "unit tests not built: ./configure did not find what they need;" \
    "install $missing (scripts/install-deps.sh does), then run ./configure again" >&2
exit 99
