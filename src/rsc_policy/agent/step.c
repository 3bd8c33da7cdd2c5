/* Small float32 kernels of the learning step and of acting (rsc_policy.agent.native builds this file).

   rsc_gemm:      C = op(A) @ B, C row-major; A[i,k] = a[i*sai + k*sak] (op(A) = A or A.T by
                  its strides), B[k,j] = b[k*ldb + j] with contiguous rows. Each C element is
                  one FMA chain over k in order from 0, so the result is deterministic and the
                  same for every shape split. 4x16 register tiles (8 accumulators); the last
                  rows one at a time across up to 64 columns, the last n % 16 columns in masked
                  blocks of 8 rows (so short chains still overlap): no packing, no zeroing of
                  C, which is where OpenBLAS spends ~25 % of its time on these shapes.
                  The 4x16 tile runs 87-98 GFLOP/s on the step's cache-resident shapes; a
                  6x16 tile (12 accumulators) measured 0-12 % slower on each of them.
   rsc_gemm_bias: rsc_gemm, then + bias[j] and ReLU as each block is stored (a dense layer;
                  the same two roundings as adding the bias after the product).
   rsc_dense_row: one row through a dense layer (the acting forward), 8-lane dot products.
   rsc_adam:      torch's Adam update in one pass.
   rsc_transpose: dst = src.T, 8x8 AVX blocks.
   Needs AVX2 and FMA (the loader checks the CPU before it compiles). */
#include <immintrin.h>
#include <stdint.h>

/* gcc does not inline the tile loops into both entry points by itself (measured: the
   products took 42 us instead of 31 us per learning step) */
#define INLINE static inline __attribute__((always_inline))

/* The first r of 8 lanes. */
static inline __m256i tail_mask(int r) {
    static const int32_t m[16] = {-1,-1,-1,-1,-1,-1,-1,-1,0,0,0,0,0,0,0,0};
    return _mm256_loadu_si256((const __m256i*)(m + 8 - r));
}

/* The epilogue of a stored block (its lanes mk): + bias[j..] (if given), then ReLU (NaN
   kept) if asked. */
INLINE __m256 epi_m(__m256 x, const float* bias, int relu, __m256i mk) {
    if (bias) x = _mm256_add_ps(x, _mm256_maskload_ps(bias, mk));
    if (relu) x = _mm256_max_ps(_mm256_setzero_ps(), x);
    return x;
}
INLINE __m256 epi(__m256 x, const float* bias, int relu) {
    return epi_m(x, bias, relu, _mm256_set1_epi32(-1));
}

/* Rows i0..i0+R-1 (R <= 8) times the masked 8-column block at j: R independent chains. */
INLINE void narrow_tile(int R, const float* ap, int64_t sai, int64_t sak, const float* bp,
                        int64_t ldb, float* cp, int64_t ldc, int64_t kk, __m256i mk,
                        const float* bias, int relu) {
    __m256 acc[8];
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak) {
        __m256 b0 = _mm256_maskload_ps(bp, mk);
        for (int r = 0; r < 8; ++r)
            if (r < R) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + r * sai), b0, acc[r]);
    }
    for (int r = 0; r < R; ++r)
        _mm256_maskstore_ps(cp + r * ldc, mk, epi_m(acc[r], bias, relu, mk));
}

/* One row times full 8-column blocks j0..j0+8W-1 (W <= 8 blocks): W independent chains. */
INLINE void wide_row(int W, const float* ap, int64_t sak, const float* bp, int64_t ldb,
                     float* cp, int64_t kk, const float* bias, int relu) {
    __m256 acc[8];
    for (int w = 0; w < 8; ++w) acc[w] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak) {
        __m256 x = _mm256_broadcast_ss(ap);
        for (int w = 0; w < 8; ++w)
            if (w < W) acc[w] = _mm256_fmadd_ps(x, _mm256_loadu_ps(bp + 8 * w), acc[w]);
    }
    for (int w = 0; w < W; ++w)
        _mm256_storeu_ps(cp + 8 * w, epi(acc[w], bias ? bias + 8 * w : 0, relu));
}

/* C[i,j] = sum_k A[i,k] * B[k,j], each element one FMA chain over k in order from 0, then
   the epilogue. A[i,k] = a[i*sai + k*sak]; B[k,j] = b[k*ldb + j]; C row-major with ldc. */
INLINE void gemm(int64_t m, int64_t n, int64_t kk, const float* a, int64_t sai, int64_t sak,
                 const float* b, int64_t ldb, float* c, int64_t ldc, const float* bias,
                 int relu) {
    const int64_t n16 = n - n % 16, m4 = m - m % 4;
    /* the bulk: 4 rows x 16 columns, 8 accumulators */
    for (int64_t i = 0; i < m4; i += 4) {
        for (int64_t j = 0; j < n16; j += 16) {
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
            __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
            __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
            __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            const float* bp = b + j;
            const float* ap = a + i * sai;
            for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak) {
                __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
                __m256 x;
                x = _mm256_broadcast_ss(ap);
                c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(ap + sai);
                c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(ap + 2 * sai);
                c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(ap + 3 * sai);
                c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            float* cp = c + i * ldc + j;
            const float* b0 = bias ? bias + j : 0;
            const float* b8 = bias ? bias + j + 8 : 0;
            _mm256_storeu_ps(cp, epi(c00, b0, relu));
            _mm256_storeu_ps(cp + 8, epi(c01, b8, relu)); cp += ldc;
            _mm256_storeu_ps(cp, epi(c10, b0, relu));
            _mm256_storeu_ps(cp + 8, epi(c11, b8, relu)); cp += ldc;
            _mm256_storeu_ps(cp, epi(c20, b0, relu));
            _mm256_storeu_ps(cp + 8, epi(c21, b8, relu)); cp += ldc;
            _mm256_storeu_ps(cp, epi(c30, b0, relu));
            _mm256_storeu_ps(cp + 8, epi(c31, b8, relu));
        }
    }
    /* the last m % 4 rows of those columns: one row, up to 8 blocks of 8 at once */
    for (int64_t i = m4; i < m; ++i)
        for (int64_t j = 0; j < n16; j += 64) {
            int w = (int)((n16 - j) / 8 < 8 ? (n16 - j) / 8 : 8);
            wide_row(w, a + i * sai, sak, b + j, ldb, c + i * ldc + j, kk,
                     bias ? bias + j : 0, relu);
        }
    /* the last n % 16 columns, every row: 8 rows per masked block */
    for (int64_t j = n16; j < n; j += 8) {
        __m256i mk = tail_mask(n - j < 8 ? (int)(n - j) : 8);
        for (int64_t i = 0; i < m; i += 8)
            narrow_tile(m - i < 8 ? (int)(m - i) : 8, a + i * sai, sai, sak, b + j, ldb,
                        c + i * ldc + j, ldc, kk, mk, bias ? bias + j : 0, relu);
    }
}

void rsc_gemm(int64_t m, int64_t n, int64_t kk, const float* a, int64_t sai, int64_t sak,
              const float* b, int64_t ldb, float* c, int64_t ldc) {
    gemm(m, n, kk, a, sai, sak, b, ldb, c, ldc, 0, 0);
}

/* rsc_gemm, then C[i,j] = C[i,j] + bias[j] and, if relu, max(0, C[i,j]): a dense layer. */
void rsc_gemm_bias(int64_t m, int64_t n, int64_t kk, const float* a, int64_t sai, int64_t sak,
                   const float* b, int64_t ldb, float* c, int64_t ldc, const float* bias,
                   int64_t relu) {
    if (relu)  /* two calls with constant flags: each inlined copy drops the other's test */
        gemm(m, n, kk, a, sai, sak, b, ldb, c, ldc, bias, 1);
    else
        gemm(m, n, kk, a, sai, sak, b, ldb, c, ldc, bias, 0);
}

/* dst[j, i] = src[i, j]; src rows x cols with row stride lds, dst cols x rows (ldd). */
void rsc_transpose(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
    int64_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            const float* s = src + i * lds + j;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds),
                   r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds),
                   r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds),
                   r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
                   t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
                   t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                   t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                   u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                   u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                   u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float* d = dst + j * ldd + i;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; j < cols; ++j)
            for (int64_t r = 0; r < 8; ++r) dst[j * ldd + i + r] = src[(i + r) * lds + j];
    }
    for (; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

/* torch.optim.Adam's update (single tensor, no amsgrad, no weight decay) in one pass, with
   the same float32 operations in the same order as the loops it replaces, so bit for bit
   the same:  m += (g - m) * (1 - b1);  v = v * b2 + ((1 - b2) * g) * g;
   p -= (step_size * m) / (sqrt(v) / bc2 + eps).  Bound by the divider: ~5 us for the
   10,947 weights of the 102-64-64-3 net, against ~7 us for four vectorised numba loops. */
void rsc_adam(int64_t size, float* p, const float* g, float* m, float* v, float one_m_b1,
              float b2, float one_m_b2, float bc2, float eps, float step_size) {
    const __m256 c1 = _mm256_set1_ps(one_m_b1), cb2 = _mm256_set1_ps(b2),
                 c2 = _mm256_set1_ps(one_m_b2), cbc = _mm256_set1_ps(bc2),
                 ce = _mm256_set1_ps(eps), cs = _mm256_set1_ps(step_size);
    int64_t k = 0;
    for (; k + 8 <= size; k += 8) {
        __m256 gk = _mm256_loadu_ps(g + k), mk = _mm256_loadu_ps(m + k);
        __m256 vk = _mm256_loadu_ps(v + k);
        mk = _mm256_add_ps(mk, _mm256_mul_ps(_mm256_sub_ps(gk, mk), c1));
        vk = _mm256_add_ps(_mm256_mul_ps(vk, cb2), _mm256_mul_ps(_mm256_mul_ps(c2, gk), gk));
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vk), cbc), ce);
        __m256 step = _mm256_div_ps(_mm256_mul_ps(cs, mk), den);
        _mm256_storeu_ps(m + k, mk);
        _mm256_storeu_ps(v + k, vk);
        _mm256_storeu_ps(p + k, _mm256_sub_ps(_mm256_loadu_ps(p + k), step));
    }
    for (; k < size; ++k) {
        m[k] = m[k] + (g[k] - m[k]) * one_m_b1;
        v[k] = v[k] * b2 + one_m_b2 * g[k] * g[k];
        p[k] = p[k] - step_size * m[k] / (__builtin_sqrtf(v[k]) / bc2 + eps);
    }
}

/* 8 lanes summed in one fixed order: (lo + hi), then pairs, then the last two. */
INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

INLINE float dense_out(__m256 acc, const float* bias, int64_t j, int64_t relu) {
    float v = hsum(acc) + bias[j];
    return (relu && v < 0.0f) ? 0.0f : v;  /* a NaN stays a NaN */
}

/* One row through a dense layer, the acting forward: out[j] = sum_k x[k] w[j,k] + bias[j]
   (then ReLU), w row-major (ldw) as torch stores it. Each dot product runs in 8 lanes along
   k (the last k % 8 masked) and is summed by hsum: a fixed order, the same for every call,
   so every acting path that calls it agrees bit for bit. Four outputs at a time. */
void rsc_dense_row(int64_t n, int64_t kk, const float* x, const float* w, int64_t ldw,
                   const float* bias, float* out, int64_t relu) {
    const int64_t k8 = kk - kk % 8;
    const __m256i mk = tail_mask((int)(kk - k8));
    __m256 xt = _mm256_maskload_ps(x + k8, mk);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float* w0 = w + j * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int64_t k = 0; k < k8; k += 8) {
            __m256 xv = _mm256_loadu_ps(x + k);
            a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + k), a0);
            a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + ldw + k), a1);
            a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + 2 * ldw + k), a2);
            a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + 3 * ldw + k), a3);
        }
        if (k8 < kk) {
            a0 = _mm256_fmadd_ps(xt, _mm256_maskload_ps(w0 + k8, mk), a0);
            a1 = _mm256_fmadd_ps(xt, _mm256_maskload_ps(w0 + ldw + k8, mk), a1);
            a2 = _mm256_fmadd_ps(xt, _mm256_maskload_ps(w0 + 2 * ldw + k8, mk), a2);
            a3 = _mm256_fmadd_ps(xt, _mm256_maskload_ps(w0 + 3 * ldw + k8, mk), a3);
        }
        out[j] = dense_out(a0, bias, j, relu);
        out[j + 1] = dense_out(a1, bias, j + 1, relu);
        out[j + 2] = dense_out(a2, bias, j + 2, relu);
        out[j + 3] = dense_out(a3, bias, j + 3, relu);
    }
    for (; j < n; ++j) {
        const float* w0 = w + j * ldw;
        __m256 a0 = _mm256_setzero_ps();
        for (int64_t k = 0; k < k8; k += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(w0 + k), a0);
        if (k8 < kk) a0 = _mm256_fmadd_ps(xt, _mm256_maskload_ps(w0 + k8, mk), a0);
        out[j] = dense_out(a0, bias, j, relu);
    }
}
