/*
** blocks/crc32c.c: CRC32C (Castagnoli, reflected polynomial 0x82F63B78),
** the checksum of every block and root slot.
**
** Uses the SSE4.2 crc32 instruction when the CPU has it and a table-driven
** slice-by-8 routine otherwise. Both give the same value; the test suite
** checks the standard vector ("123456789" -> 0xE3069283) and the two
** routines against each other. The instruction takes 3 cycles but can
** start every cycle, so the hardware routine runs three streams of
** STRIDE bytes at once and joins them: the CRC register is linear, so
** reg(A B) = shift(reg(A)) ^ reg0(B), where shift feeds STRIDE zero bytes
** (four 256-entry tables, built once) and reg0 starts from zero. This
** makes a 4 KiB block's checksum about twice as fast as one stream.
** Invariant: the only process-wide state is the lookup tables and the CPU
** feature bit, all computed once (pthread_once) from constants.
*/
#include <stddef.h>
#include <stdint.h>

#include "blk_int.h"

#define POLY 0x82F63B78u

#define STRIDE 256 /* bytes per stream in the three-stream routine */

/* Slice-by-8 tables, the STRIDE-zeros shift tables and the CPU check,
 * computed once on first use. */
static uint32_t table[8][256];
static uint32_t shift_table[4][256];
static int hw_crc;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* shift_table: the register after STRIDE zero bytes, from each byte of
 * the register alone (the map is linear, so one bit at a time, XORed). */
static void init_shift(void)
{
    uint32_t bit[32];
    for (int b = 0; b < 32; b++) {
        uint32_t c = UINT32_C(1) << b;
        for (int k = 0; k < STRIDE; k++)
            c = (c >> 8) ^ table[0][c & 0xff];
        bit[b] = c;
    }
    for (int byte = 0; byte < 4; byte++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = 0;
            for (int i = 0; i < 8; i++)
                if (v >> i & 1)
                    c ^= bit[8 * byte + i];
            shift_table[byte][v] = c;
        }
}

static uint32_t shift(uint32_t c)
{
    return shift_table[0][c & 0xff] ^ shift_table[1][(c >> 8) & 0xff] ^
           shift_table[2][(c >> 16) & 0xff] ^ shift_table[3][c >> 24];
}

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
    init_shift();
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
    while (n >= 3 * STRIDE) { /* three streams at once, then joined */
        uint64_t b = 0, d = 0, w0, w1, w2;
        for (size_t i = 0; i < STRIDE; i += 8) {
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + STRIDE + i, 8);
            memcpy(&w2, p + 2 * STRIDE + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            b = __builtin_ia32_crc32di(b, w1);
            d = __builtin_ia32_crc32di(d, w2);
        }
        c = shift(shift((uint32_t)c) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * STRIDE;
        n -= 3 * STRIDE;
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
