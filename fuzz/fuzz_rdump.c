/*
** fuzz/fuzz_rdump.c: rdump's raw views (tools/rdump/raw.c) on any bytes,
** text and JSON, walking each root slot that decodes: they must neither
** crash nor hang nor leak, whatever the file holds.
*/
#include <stdio.h>

#include "tools/rdump/rdump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    FILE *f;
    image im;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        return 0;
    if (size == 0 || !(f = fmemopen((void *)data, size, "rb")))
        return 0;
    for (int json = 0; json < 2; json++) {
        if (!rdump_load(&im, f, sink, json))
            break;
        rdump_summary(&im);
        rdump_blocks(&im);
        for (int slot = 0; slot < 2; slot++) {
            if (!im.slot_ok[slot])
                continue;
            im.walk = slot;
            rdump_map(&im);
            rdump_freelist(&im);
            rdump_chain(&im, 1 + data[0] % 8);
            rdump_dot(&im);
            rdump_svg(&im, sink);
        }
    }
    fclose(f);
    return 0;
}
