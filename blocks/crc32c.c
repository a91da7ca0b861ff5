/*
** blocks/crc32c.c: CRC32C (Castagnoli, reflected polynomial 0x82F63B78),
** the checksum of every block and root slot.
**
** Uses the SSE4.2 crc32 instruction when the CPU has it and a table-driven
** slice-by-8 routine otherwise. Both give the same value; the test suite
** checks the standard vector ("123456789" -> 0xE3069283).
** Invariant: the only process-wide state is the lookup table and the CPU
** feature bit, both computed once (pthread_once) from constants.
*/
#include <stddef.h>
#include <stdint.h>

#include "blk_int.h"

#define POLY 0x82F63B78u

/* Slice-by-8 tables and the CPU check, computed once on first use. */
static uint32_t table[8][256];
static int hw_crc;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_once_fn(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    hw_crc = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            table[s][i] = (table[s - 1][i] >> 8) ^ table[0][table[s - 1][i] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint32_t lo = crc ^ rl__get32(p), hi = rl__get32(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
              table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
                                                         const uint8_t *p,
                                                         size_t n)
{
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* the instruction defines little-endian input */
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

uint32_t rl__crc32c(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    pthread_once(&init_once, init_once_fn);
    crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (hw_crc)
        return ~crc_hw(crc, p, n);
#endif
    return ~crc_soft(crc, p, n);
}
