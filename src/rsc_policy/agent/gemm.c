/* Small float32 products for the learning step (rsc_policy.agent.native builds this file).

   rsc_gemm:      C = op(A) @ B, C row-major; A[i,k] = a[i*sai + k*sak] (op(A) = A or A.T by
                  its strides), B[k,j] = b[k*ldb + j] with contiguous rows. Each C element is
                  one FMA chain over k in order from 0, so the result is deterministic and the
                  same for every shape split. 4x16 register tiles (8 accumulators), masked
                  loads and stores for the last < 8 columns: no packing, no zeroing of C,
                  which is where OpenBLAS spends ~25 % of its time on these shapes.
   rsc_transpose: dst = src.T, 8x8 AVX blocks.
   Needs AVX2 and FMA (the loader checks the CPU before it compiles). */
#include <immintrin.h>
#include <stdint.h>
/* C[i,j] = sum_k A[i,k] * B[k,j], each element one FMA chain over k in order from 0.
   A[i,k] = a[i*sai + k*sak]; B[k,j] = b[k*ldb + j]; C row-major with ldc. */
static inline __m256i tail_mask(int r) {
    static const int32_t m[16] = {-1,-1,-1,-1,-1,-1,-1,-1,0,0,0,0,0,0,0,0};
    return _mm256_loadu_si256((const __m256i*)(m + 8 - r));
}
#define MR 4
void rsc_gemm(int64_t m, int64_t n, int64_t kk, const float* a, int64_t sai, int64_t sak,
              const float* b, int64_t ldb, float* c, int64_t ldc) {
    int64_t i = 0;
    for (; i + MR <= m; i += MR) {
        const float* a0 = a + i * sai;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
            __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
            __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
            __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            const float* bp = b + j;
            const float* ap = a0;
            for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak) {
                __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
                __m256 x;
                x = _mm256_broadcast_ss(ap);            c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(ap + sai);      c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(ap + 2 * sai);  c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(ap + 3 * sai);  c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            float* cp = c + i * ldc + j;
            _mm256_storeu_ps(cp, c00); _mm256_storeu_ps(cp + 8, c01); cp += ldc;
            _mm256_storeu_ps(cp, c10); _mm256_storeu_ps(cp + 8, c11); cp += ldc;
            _mm256_storeu_ps(cp, c20); _mm256_storeu_ps(cp + 8, c21); cp += ldc;
            _mm256_storeu_ps(cp, c30); _mm256_storeu_ps(cp + 8, c31);
        }
        for (; j < n; j += 8) {
            int r = n - j < 8 ? (int)(n - j) : 8;
            __m256i mk = tail_mask(r);
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
            __m256 c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
            const float* bp = b + j;
            const float* ap = a0;
            for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak) {
                __m256 b0 = _mm256_maskload_ps(bp, mk);
                c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap), b0, c0);
                c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + sai), b0, c1);
                c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 2 * sai), b0, c2);
                c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 3 * sai), b0, c3);
            }
            float* cp = c + i * ldc + j;
            _mm256_maskstore_ps(cp, mk, c0); cp += ldc;
            _mm256_maskstore_ps(cp, mk, c1); cp += ldc;
            _mm256_maskstore_ps(cp, mk, c2); cp += ldc;
            _mm256_maskstore_ps(cp, mk, c3);
        }
    }
    for (; i < m; ++i) {
        const float* a0 = a + i * sai;
        for (int64_t j = 0; j < n; j += 8) {
            int r = n - j < 8 ? (int)(n - j) : 8;
            __m256i mk = tail_mask(r);
            __m256 c0 = _mm256_setzero_ps();
            const float* bp = b + j;
            const float* ap = a0;
            for (int64_t k = 0; k < kk; ++k, bp += ldb, ap += sak)
                c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap), _mm256_maskload_ps(bp, mk), c0);
            _mm256_maskstore_ps(c + i * ldc + j, mk, c0);
        }
    }
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
