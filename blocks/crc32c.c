/*
** blocks/crc32c.c: CRC32C (Castagnoli, reflected polynomial 0x82F63B78),
** the checksum of every block and root slot.
**
** Three routines give the same value; the fastest the CPU has is used:
**   fold    AVX-512 with VPCLMULQDQ: carry-less multiplication folds
**           256 bytes a step, then the crc32 instruction finishes the
**           last 16 (about twice as fast as three streams on a 4 KiB
**           block; docs/performance.md).
**   hw      the SSE4.2 crc32 instruction. It takes 3 cycles but can
**           start every cycle, so it runs three streams of STRIDE bytes
**           at once and joins them: the CRC register is linear, so
**           reg(A B) = shift(reg(A)) ^ reg0(B), where shift feeds STRIDE
**           zero bytes (four 256-entry tables, built once).
**   soft    table-driven slice-by-8, for any CPU.
** How folding works: a message M leaves the remainder M(x) x^32 mod P.
** A 16-byte chunk A that ends D bits before the chunk B can be replaced
** by A(x) x^D mod P, a polynomial short enough to XOR into B; with A's
** halves H (first 8 bytes) and L, that is H(x) x^(D+64) + L(x) x^D, and
** each term is one carry-less multiply by a constant x^(D+32) or
** x^(D-32) mod P (the extra x^32 keeps the product aligned with B in
** the reflected bit order, hence the constants' shift by one). The
** register a caller continues from is XORed into the first 4 bytes.
** The test suite holds every routine the CPU has to a bit-at-a-time
** definition over many lengths and alignments (rl__crc32c_with).
** Invariant: the only process-wide state is the lookup tables, the fold
** constants and the table of the routines this CPU has, all computed
** once (pthread_once) from constants.
*/
#include <stddef.h>
#include <stdint.h>

#include "blk_int.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define X86_CRC 1
#include <immintrin.h>
#endif

#define POLY 0x82F63B78u

#define STRIDE 256 /* bytes per stream in the three-stream routine */

/* Slice-by-8 tables, the STRIDE-zeros shift tables and the routines this
 * CPU has, computed once on first use. */
static uint32_t table[8][256];
static uint32_t shift_table[4][256];
typedef uint32_t crc_routine(uint32_t crc, const uint8_t *p, size_t n);
static crc_routine *routines[RL__CRC_FOLD + 1]; /* by RL__CRC_*; NULL: lacking */
static crc_routine *best;                       /* the fastest of them */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The register times x, reduced: one bit of input, or x^e one power up. */
static uint32_t times_x(uint32_t r)
{
    return (r >> 1) ^ ((r & 1) ? POLY : 0);
}

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

#ifdef X86_CRC
/* Fold constants (x^(D+32) mod P low, x^(D-32) mod P high, reflected and
 * shifted left by one) for D = 2048, 512 and 128 bits. */
static __m128i fold_2048, fold_512, fold_128;

/* x^e mod P in the reflected order (bit t holds x^(31-t)), shifted by one. */
static long long xpow_shifted(unsigned e)
{
    uint32_t r = UINT32_C(1) << 31; /* x^0 */
    while (e--)
        r = times_x(r);
    return (long long)((uint64_t)r << 1);
}

static __m128i fold_constants(unsigned d)
{
    return _mm_set_epi64x(xpow_shifted(d - 32), xpow_shifted(d + 32));
}
#endif

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

#ifdef X86_CRC
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

#define FOLD_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

/* x folded D bits forward onto y (D as the constants k say). */
FOLD_TARGET static inline __m128i fold16(__m128i x, __m128i k, __m128i y)
{
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
                                       _mm_clmulepi64_si128(x, k, 0x11)), y);
}

/* The same for four 16-byte chunks at once, each onto its own. */
FOLD_TARGET static inline __m512i fold64(__m512i x, __m512i k, __m512i y)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), y, 0x96);
}

FOLD_TARGET static uint32_t crc_fold(uint32_t crc, const uint8_t *p, size_t n)
{
    __m512i k2048, k512, x0, x1, x2, x3;
    __m128i x;
    uint64_t c;
    if (n < 256)
        return crc_hw(crc, p, n);
    k2048 = _mm512_broadcast_i32x4(fold_2048);
    k512 = _mm512_broadcast_i32x4(fold_512);
    x0 = _mm512_loadu_si512(p);
    x1 = _mm512_loadu_si512(p + 64);
    x2 = _mm512_loadu_si512(p + 128);
    x3 = _mm512_loadu_si512(p + 192);
    x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
    for (p += 256, n -= 256; n >= 256; p += 256, n -= 256) {
        x0 = fold64(x0, k2048, _mm512_loadu_si512(p));
        x1 = fold64(x1, k2048, _mm512_loadu_si512(p + 64));
        x2 = fold64(x2, k2048, _mm512_loadu_si512(p + 128));
        x3 = fold64(x3, k2048, _mm512_loadu_si512(p + 192));
    }
    x1 = fold64(x0, k512, x1);
    x2 = fold64(x1, k512, x2);
    x3 = fold64(x2, k512, x3);
    x = fold16(_mm512_castsi512_si128(x3), fold_128, _mm512_extracti32x4_epi32(x3, 1));
    x = fold16(x, fold_128, _mm512_extracti32x4_epi32(x3, 2));
    x = fold16(x, fold_128, _mm512_extracti32x4_epi32(x3, 3));
    for (; n >= 16; p += 16, n -= 16)
        x = fold16(x, fold_128, _mm_loadu_si128((const void *)p));
    /* What is left is the CRC of x's 16 bytes and the tail, from zero. */
    c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
    return crc_hw((uint32_t)c, p, n);
}
#endif

static void init_once_fn(void)
{
    routines[RL__CRC_SOFT] = crc_soft;
#ifdef X86_CRC
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        routines[RL__CRC_HW] = crc_hw;
        if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("vpclmulqdq"))
            routines[RL__CRC_FOLD] = crc_fold;
    }
    fold_2048 = fold_constants(2048);
    fold_512 = fold_constants(512);
    fold_128 = fold_constants(128);
#endif
    for (int r = RL__CRC_SOFT; r <= RL__CRC_FOLD; r++)
        if (routines[r])
            best = routines[r];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = times_x(c);
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            table[s][i] = (table[s - 1][i] >> 8) ^ table[0][table[s - 1][i] & 0xff];
    init_shift();
}

uint32_t rl__crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&init_once, init_once_fn);
    return ~best(~crc, buf, n);
}

int rl__crc32c_with(int routine, uint32_t *crc, const void *buf, size_t n)
{
    pthread_once(&init_once, init_once_fn);
    if (routine < RL__CRC_SOFT || routine > RL__CRC_FOLD || !routines[routine])
        return 0;
    *crc = ~routines[routine](~*crc, buf, n);
    return 1;
}
