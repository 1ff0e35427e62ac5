#!/bin/sh
# layers.sh - make check's run of scripts/check-layers.sh: no arrow up
# between the folders of src/ (includes, and calls in the built objects).
# A test of its own here so that its log lands in tests/ of the build tree.
exec sh "${HEMOSCAN_SRCDIR:-.}/scripts/check-layers.sh" "${HEMOSCAN_SRCDIR:-.}" "${HEMOSCAN_BUILDDIR:-.}"
