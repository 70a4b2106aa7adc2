/* sigmoid and tanh as TF's float32 CPU kernels compute them (Eigen's packet
 * path, docs/KERAS_SEMANTICS.md §0.3 and §0.4), written without branches so that
 * a loop over them vectorises. Only IEEE single-precision +, −, ×, ÷,
 * comparisons and exact integer conversions: with -ffp-contract=off the
 * scalar and every vectorised form give the same bits. NaN propagates.
 *
 * Differences from TF: no flush-to-zero (a result TF flushes to 0 is a
 * subnormal here), and TF's scalar tail for sigmoid (glibc expf) is not
 * reproduced: every element follows the packet formula. */
#ifndef NNTK_VMATH_H
#define NNTK_VMATH_H

#include <stdint.h>
#include <string.h>

/* 2^m for an integral m in [-126, 127], exactly: m + (2^23 + 127) holds
 * m + 127 in its low mantissa bits, which become the exponent field. Pure
 * float arithmetic and bit moves (no float-to-int conversion, which is
 * undefined for NaN and keeps GCC from vectorising). */
static inline float nntk_exp2i(float m) {
    const float biased = m + 8388735.0f;
    uint32_t bits;
    memcpy(&bits, &biased, sizeof bits);
    bits = (bits & 0x7FFFFFu) << 23;
    float r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* floor(v) for |v| < 2^22: round to nearest with the 1.5·2^23 trick, then
 * step down where that rounded up. NaN stays NaN. */
static inline float nntk_floor_small(float v) {
#if defined(__GNUC__) && (defined(__SSE4_1__) || defined(__aarch64__))
    /* One rounding instruction where the target has one (the same value).
     * The select below would otherwise let GCC evaluate the whole sigmoid
     * for both outcomes and blend (measured: 2x the work per vector). */
    return __builtin_floorf(v);
#else
    const float r = (v + 12582912.0f) - 12582912.0f;
    return r - (r > v ? 1.0f : 0.0f);
#endif
}

/* tanh: clamp to ±7.90738964080810547, then (x³·P(x²) + x) / Q(x²). */
static inline float nntk_tanh(float x) {
    const float lim = 7.90738964080810547f;
    x = x > lim ? lim : x;
    x = x < -lim ? -lim : x;
    const float x2 = x * x, x3 = x2 * x;
    float p = 1.394553628e-8f;
    p = p * x2 + 2.102733560e-5f;
    p = p * x2 + 3.520756727e-3f;
    p = p * x2 + 1.340216100e-1f;
    float q = 8.015776984e-7f;
    q = q * x2 + 3.326951409e-4f;
    q = q * x2 + 2.597254514e-2f;
    q = q * x2 + 4.673548340e-1f;
    q = q * x2 + 1.0f;
    return (x3 * p + x) / q;
}

/* sigmoid: e = exp(min(x, 16.6355324)/2)² by Eigen's range reduction and
 * polynomial, result e / (1 + e); 0 below −104. */
static inline float nntk_sigmoid(float x) {
    const float hi = 16.6355324f;
    const float below = x < -104.0f ? 0.0f : 1.0f;
    float v = x > hi ? hi : x;
    v = v < -104.0f ? -104.0f : v;
    v = 0.5f * v;
    const float m = nntk_floor_small(v * 1.44269504f + 0.5f);
    float r = m * -0.693359375f + v;
    r = m * 2.12194440e-4f + r;
    const float r2 = r * r;
    const float p_even = r2 * 0.041898667812347412f + 0.49999141693115234f;
    const float p_odd = r2 * 0.0083347130566835403f + 0.16666877269744873f;
    float p = r * p_odd + p_even;
    p = r2 * p + (r + 1.0f);
    float e = p * nntk_exp2i(m);
    e = e * e;
    return below * (e / (1.0f + e));
}

#endif /* NNTK_VMATH_H */
