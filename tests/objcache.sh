#!/bin/sh
# OBJCACHE of the test suite's Verilator builds (set by tests/conftest.py). Verilator's
# makefiles run "$OBJCACHE <compiler> <arguments>" for every compile. A compile of Verilator's
# own runtime (its source under $VERILATOR_ROOT/include: the same object for every model) goes
# through sccache ($MXFORGE_SCCACHE); every other compile runs as it is, since a model's own
# files are compiled against a precompiled header, which sccache does not produce.
if [ -n "$VERILATOR_ROOT" ] && [ -n "$MXFORGE_SCCACHE" ]; then
    for arg in "$@"; do
        case "$arg" in
            "$VERILATOR_ROOT"/include/*.cpp) exec "$MXFORGE_SCCACHE" "$@" ;;
        esac
    done
fi
exec "$@"
