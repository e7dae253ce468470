/* scheduler.plan_work in C: the same int32 words and the same summary, for one batch, in one call.
 *
 * scheduler.py is the specification (its docstrings define the buffer layout); its numpy fast paths are
 * all one semantics, which this file computes with plain loops:
 *
 *   kv_len    (pages - 1) x page_size + last page's length, 0 without pages (int32, wrapping as numpy does)
 *   tiles     one per request when every request has queries and all fit one tile (or in decode, qo_indptr
 *             NULL, when the group fits BLOCK_M); otherwise each request's packed rows cut into BLOCK_M
 *             tiles, with the causal and window clamps of scheduler._repeated_tiles
 *   chunk     split_size, or the split_factor x target_ctas rule with min_chunk and "pieces -= 1"
 *   order     causal tiles of the general path, when (tiles x heads) exceed target_ctas: most KV first, then
 *             tok_base, then longest span first, ties in tile order (np.lexsort is stable)
 *   words     one entry per tile (_write_whole), or each tile split into ceil(span / chunk) chunks, at
 *             least one (_write_split, of which _write_uniform is a fast path)
 *
 * Plain C99, no Python or numpy headers: called through ctypes by native_plan.py with one int64 argument
 * block (layout A_* below), results written back into it. Arithmetic is exact (int64) and every word is
 * written modulo 2^32, as numpy's int32 writes are; kv_len wraps to int32 as numpy computes it from int32
 * arrays. The two planners agree wherever lengths and offsets fit the int32 words the kernel reads; numpy's
 * int32 intermediates could wrap (and differ) only past 2^31 tokens.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { HEADER = 8, ITEM_FIELDS = 12, GROUP_FIELDS = 8 };

/* The argument block (int64 words), shared with native_plan.py. */
enum {
    A_OUT, A_OUT_WORDS, A_QO, A_KV, A_LAST, A_BATCH, A_DTYPES, A_PAGE_SIZE, A_GROUP_SIZE, A_NUM_KV_HEADS,
    A_BLOCK_M, A_BLOCK_N, A_CAUSAL, A_WINDOW_LEFT, A_TARGET_CTAS, A_MIN_CHUNK, A_HAS_SPLIT_SIZE, A_SPLIT_SIZE,
    A_HAS_MAX_SLOTS, A_MAX_SLOTS, A_SPLIT_FACTOR,
    /* results */
    R_NUM_ENTRIES = 24, R_NUM_GROUPS, R_NUM_SLOTS, R_WORDS, R_CHUNK, R_NEEDED
};

/* A_DTYPES bits: which index arrays are int64 (else int32). */
enum { QO_INT64 = 1, KV_INT64 = 2, LAST_INT64 = 4 };

/* Return codes (native_plan.py turns them into plan_work's errors). */
enum {
    PLAN_OK = 0,
    PLAN_WORDS = -1,     /* R_NEEDED int32 words needed, more than A_OUT_WORDS */
    PLAN_SLOTS = -2,     /* R_NEEDED partial-result slots needed, more than A_MAX_SLOTS */
    PLAN_NO_MEMORY = -3,
    PLAN_DEFER = -4      /* inputs numpy rejects (negative query lengths, sizes <= 0): numpy's error */
};

/* A query tile: item fields 0-3 and 5-7 (kv_lo, kv_hi of the whole range), and hi - lo. */
typedef struct {
    int32_t tok_base, qo_len, kv_len, row_start, lo, hi, page_base, span;
} Tile;

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE int64_t load(const void *p, int is64, int64_t i) {
    return is64 ? ((const int64_t *)p)[i] : (int64_t)((const int32_t *)p)[i];
}

/* numpy's int32 cast of an integer: modulo 2^32 (conversion of out-of-range values is GCC/Clang-defined). */
static inline int32_t wrap32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Python's a // b and -(-a // b), b > 0. */
static inline int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
static inline int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

/* The batch: index arrays, each int32 or int64. */
typedef struct {
    const void *qo, *kv, *last;  /* qo NULL: one query per request (decode) */
    int qo64, kv64, last64;
    int64_t batch, page_size, group, block_m, window_left;
    int causal;
} Batch;

typedef struct {
    int64_t num_tiles, max_span, min_span, total_span;
} TileStats;

static ALWAYS_INLINE void set_tile(Tile *t, int64_t tok_base, int64_t qo_len, int64_t kv_len, int64_t row_start,
                                   int64_t lo, int64_t hi, int64_t page_base) {
    t->tok_base = wrap32(tok_base); t->qo_len = wrap32(qo_len); t->kv_len = wrap32(kv_len);
    t->row_start = wrap32(row_start); t->lo = wrap32(lo); t->hi = wrap32(hi); t->page_base = wrap32(page_base);
    t->span = wrap32(hi - lo);
}

/* Queries of request r (1 in decode). */
static ALWAYS_INLINE int64_t queries(const Batch *b, int qo64, int64_t r) {
    return b->qo ? load(b->qo, qo64, r + 1) - load(b->qo, qo64, r) : 1;
}

/* Fills tiles (request by request, each request's tiles in row order); returns their count, longest, shortest
 * and total span. The dtype flags are parameters so that the all-int32 call compiles to its own loop. */
static ALWAYS_INLINE TileStats fill_tiles(const Batch *b, int one_per_request, Tile *tiles, int qo64, int kv64,
                                          int last64) {
    TileStats stats = {0, 0, 0, 0};
    const int64_t group = b->group, block_m = b->block_m, window_left = b->window_left;
    /* Tile i's causal end and window start divide (i x block_m + c) by group: kept as quotient and remainder. */
    const int64_t step_q = block_m / group, step_r = block_m % group;
    int64_t t = 0;
    for (int64_t r = 0; r < b->batch; r++) {
        const int64_t pages = load(b->kv, kv64, r + 1) - load(b->kv, kv64, r);
        /* kv_len as numpy computes it in int32 (pages x page_size + last - page_size, wrapping) */
        const int64_t kv_len = pages == 0 ? 0 : wrap32(pages * b->page_size + load(b->last, last64, r) - b->page_size);
        const int64_t tok_base = b->qo ? load(b->qo, qo64, r) : r;
        const int64_t qo_len = queries(b, qo64, r);
        const int64_t page_base = load(b->kv, kv64, r);
        const int64_t shift = kv_len - qo_len;  /* query i sits at KV position i + shift */
        if (one_per_request) {
            /* The last query sees all of the KV; the window starts at the first query's position. */
            const int64_t lo = window_left >= 0 ? min64(max64(shift - window_left, 0), kv_len) : 0;
            set_tile(&tiles[t++], tok_base, qo_len, kv_len, 0, lo, kv_len, page_base);
            if (t == 1 || kv_len - lo > stats.max_span) stats.max_span = kv_len - lo;
            if (t == 1 || kv_len - lo < stats.min_span) stats.min_span = kv_len - lo;
            stats.total_span += kv_len - lo;
            continue;
        }
        const int64_t count = ceildiv(qo_len * group, block_m);
        int64_t end_q = (block_m - 1 + group) / group, end_r = (block_m - 1 + group) % group;  /* tile 0 */
        int64_t start_q = 0, start_r = 0;
        for (int64_t i = 0; i < count; i++, t++) {
            /* hi: 1 + the tile's last query (row_start + block_m - 1) // group, + shift, within [0, kv_len] */
            const int64_t hi = b->causal ? min64(max64(end_q + shift, 0), kv_len) : kv_len;
            const int64_t lo = window_left >= 0 ? min64(max64(start_q + shift - window_left, 0), hi) : 0;
            set_tile(&tiles[t], tok_base, qo_len, kv_len, i * block_m, lo, hi, page_base);
            if (t == 0 || hi - lo > stats.max_span) stats.max_span = hi - lo;
            if (t == 0 || hi - lo < stats.min_span) stats.min_span = hi - lo;
            stats.total_span += hi - lo;
            end_q += step_q; end_r += step_r;
            if (end_r >= group) { end_q++; end_r -= group; }
            start_q += step_q; start_r += step_r;
            if (start_r >= group) { start_q++; start_r -= group; }
        }
    }
    stats.num_tiles = t;
    return stats;
}

/* Stable order of causal tiles: most KV first, then tok_base, then longest span first. */
static inline int tile_before(const Tile *tiles, int32_t x, int32_t y) {
    const Tile *p = &tiles[x], *q = &tiles[y];
    if (p->kv_len != q->kv_len) return p->kv_len > q->kv_len;
    if (p->tok_base != q->tok_base) return p->tok_base < q->tok_base;
    return p->span > q->span;
}

/* The first two keys alone: < 0 when x goes first, 0 when they tie (a request's tiles), > 0 when y does. */
static inline int request_order(const Tile *x, const Tile *y) {
    if (x->kv_len != y->kv_len) return x->kv_len > y->kv_len ? -1 : 1;
    if (x->tok_base != y->tok_base) return x->tok_base < y->tok_base ? -1 : 1;
    return 0;
}

/* Stable sort of the tile indices in order[n] (tmp: n more) by tile_before: insertion sort of runs of 8,
 * then bottom-up merges. */
static void sort_tiles(const Tile *tiles, int32_t *order, int32_t *tmp, int64_t n) {
    for (int64_t s = 0; s < n; s += 8) {
        const int64_t e = min64(s + 8, n);
        for (int64_t i = s + 1; i < e; i++) {
            const int32_t v = order[i];
            int64_t j = i;
            while (j > s && tile_before(tiles, v, order[j - 1])) { order[j] = order[j - 1]; j--; }
            order[j] = v;
        }
    }
    int32_t *src = order, *dst = tmp;
    for (int64_t width = 8; width < n; width *= 2) {
        for (int64_t s = 0; s < n; s += 2 * width) {
            const int64_t mid = min64(s + width, n), end = min64(s + 2 * width, n);
            int64_t i = s, j = mid, k = s;
            while (i < mid && j < end) dst[k++] = tile_before(tiles, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < end) dst[k++] = src[j++];
        }
        int32_t *swap = src; src = dst; dst = swap;
    }
    if (src != order) memcpy(order, src, (size_t)n * sizeof(int32_t));
}

/* order[k] = the tile listed k-th: the stable sort by tile_before (np.lexsort((-span, tok_base, -kv_len))),
 * in linear time for the usual input. Tiles come request by request, each request's in row order, so the list
 * is made of segments of equal (kv_len, tok_base): the segments are put in order (usually they already are),
 * then each segment's tiles by span, longest first, ties in tile order. Causal spans never decrease along a
 * request (each tile sees more KV), so that is the segment reversed group by group of equal spans; other
 * segments are sorted. Two segments of equal keys (two requests with the same tok_base, which needs a request
 * with negative queries or tok_base past int32) take the plain stable sort of all tiles. scratch: 3n words. */
static void order_tiles(const Tile *tiles, int32_t *order, int32_t *scratch, int64_t n) {
    int32_t *starts = scratch, *ends = scratch + n, *tmp = scratch + 2 * n;
    int64_t m = 0, in_order = 1;
    for (int64_t s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && request_order(&tiles[e], &tiles[s]) == 0; e++) {}
        if (m > 0 && request_order(&tiles[s], &tiles[starts[m - 1]]) < 0) in_order = 0;
        starts[m++] = (int32_t)s;
        ends[s] = (int32_t)e;
    }
    if (!in_order) {
        sort_tiles(tiles, starts, tmp, m);  /* segments of distinct keys: their first tiles' order */
        for (int64_t i = 1; i < m; i++) {
            if (request_order(&tiles[starts[i]], &tiles[starts[i - 1]]) == 0) {
                for (int64_t k = 0; k < n; k++) order[k] = (int32_t)k;
                sort_tiles(tiles, order, tmp, n);
                return;
            }
        }
    }
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++) {
        const int64_t s = starts[i], e = ends[s];
        int rising = 1, falling = 1;
        for (int64_t x = s + 1; x < e; x++) {
            rising &= tiles[x].span >= tiles[x - 1].span;
            falling &= tiles[x].span <= tiles[x - 1].span;
        }
        if (falling) {
            for (int64_t x = s; x < e; x++) order[k++] = (int32_t)x;
        } else if (rising) {  /* groups of equal spans, last group first, each in tile order */
            for (int64_t g_end = e; g_end > s;) {
                int64_t g = g_end - 1;
                while (g > s && tiles[g - 1].span == tiles[g_end - 1].span) g--;
                for (int64_t x = g; x < g_end; x++) order[k++] = (int32_t)x;
                g_end = g;
            }
        } else {
            for (int64_t x = s; x < e; x++) order[k + x - s] = (int32_t)x;
            sort_tiles(tiles, order + k, tmp, e - s);
            k += e - s;
        }
    }
}

static ALWAYS_INLINE void write_item(int32_t *w, const Tile *t, int64_t lo, int64_t hi, int64_t slot, int64_t tile,
                                     int64_t chunks, int64_t first) {
    /* Field by field: a row built on the stack and copied stalls on store forwarding (measured 2x slower). */
    w[0] = t->tok_base; w[1] = t->qo_len; w[2] = t->kv_len; w[3] = t->row_start; w[4] = 0;
    w[5] = wrap32(lo); w[6] = wrap32(hi); w[7] = t->page_base;
    w[8] = wrap32(slot); w[9] = wrap32(tile); w[10] = wrap32(chunks); w[11] = wrap32(first);
}

/* Writes the schedule of the batch described by a (A_* words) into a[A_OUT]; results into a[R_*].
 * Returns PLAN_OK or one of the negative codes above. */
int ka_plan_work(int64_t *a) {
    int32_t *out = (int32_t *)(intptr_t)a[A_OUT];
    const int64_t out_words = a[A_OUT_WORDS], heads = a[A_NUM_KV_HEADS], block_n = a[A_BLOCK_N];
    const int64_t target = a[A_TARGET_CTAS], split_factor = a[A_SPLIT_FACTOR];
    const int dtypes = (int)a[A_DTYPES];
    const Batch b = {(const void *)(intptr_t)a[A_QO], (const void *)(intptr_t)a[A_KV],
                     (const void *)(intptr_t)a[A_LAST], (dtypes & QO_INT64) != 0, (dtypes & KV_INT64) != 0,
                     (dtypes & LAST_INT64) != 0, a[A_BATCH], a[A_PAGE_SIZE], a[A_GROUP_SIZE], a[A_BLOCK_M],
                     a[A_WINDOW_LEFT], a[A_CAUSAL] != 0};
    if (b.group <= 0 || b.block_m <= 0 || block_n <= 0 || heads <= 0 || b.batch < 0) return PLAN_DEFER;

    /* Tiles: one per request (decode, or every request's rows within one tile), else BLOCK_M rows each. */
    int one_per_request = b.qo == NULL && b.group <= b.block_m;
    int64_t num_tiles = b.batch;
    if (!one_per_request) {
        int64_t most = 0, least = 0;
        for (int64_t r = 0; r < b.batch; r++) {
            const int64_t q = queries(&b, b.qo64, r);
            if (r == 0 || q > most) most = q;
            if (r == 0 || q < least) least = q;
        }
        one_per_request = most * b.group <= b.block_m && (least > 0 || b.batch == 0);
        if (!one_per_request) {
            if (least < 0) return PLAN_DEFER;  /* numpy's repeat raises on a negative count */
            num_tiles = 0;
            for (int64_t r = 0; r < b.batch; r++) num_tiles += ceildiv(queries(&b, b.qo64, r) * b.group, b.block_m);
        }
    }
    const int64_t group_offset = HEADER + num_tiles * ITEM_FIELDS;
    if (group_offset > out_words) {
        a[R_NEEDED] = group_offset;
        return PLAN_WORDS;
    }

    Tile *tiles = (Tile *)malloc((size_t)(num_tiles > 0 ? num_tiles : 1) * sizeof(Tile));
    if (tiles == NULL) return PLAN_NO_MEMORY;
    const TileStats stats = !b.qo64 && !b.kv64 && !b.last64 ? fill_tiles(&b, one_per_request, tiles, 0, 0, 0)
                                                            : fill_tiles(&b, one_per_request, tiles, b.qo64, b.kv64,
                                                                         b.last64);
    const int64_t max_span = stats.max_span;

    /* Chunk size: as scheduler.plan_work. */
    int64_t chunk;
    if (a[A_HAS_SPLIT_SIZE]) {
        chunk = max64(block_n, ceildiv(a[A_SPLIT_SIZE], block_n) * block_n);
    } else if (num_tiles * heads >= split_factor * target || max_span == 0) {
        chunk = max_span;
    } else {
        chunk = max64(ceildiv(stats.total_span * heads, split_factor * target), a[A_MIN_CHUNK]);
        int64_t pieces = ceildiv(max_span, chunk);
        if (pieces > 1 && num_tiles * heads * pieces > split_factor * target) pieces -= 1;
        chunk = ceildiv(ceildiv(max_span, pieces), block_n) * block_n;
    }

    /* Tile k of the list is tiles[order[k]] (order NULL: tile k). */
    int32_t *order = NULL;
    if (b.causal && !one_per_request && num_tiles * heads > target && num_tiles > 1) {
        order = (int32_t *)malloc((size_t)num_tiles * 4 * sizeof(int32_t));
        if (order == NULL) { free(tiles); return PLAN_NO_MEMORY; }
        order_tiles(tiles, order, order + num_tiles, num_tiles);
    }

    a[R_CHUNK] = chunk;
    /* Header word 7: every item has as many KV tokens as every other (equal tiles, whole or cut into equal
     * chunks), so the kernel hands items out statically instead of through the shared counter (as
     * scheduler.equal_items). */
    const int32_t equal = num_tiles > 0 && stats.min_span == max_span && (chunk >= max_span || max_span % chunk == 0);
    if (chunk >= max_span) {  /* _write_whole */
        for (int64_t k = 0; k < num_tiles; k++) {
            const Tile *tile = &tiles[order ? order[k] : k];
            write_item(out + HEADER + k * ITEM_FIELDS, tile, tile->lo, tile->hi, -1, 0, 0, 0);
        }
        free(order);
        free(tiles);
        const int32_t header[HEADER] = {wrap32(num_tiles * heads), 0, wrap32(group_offset), wrap32(heads), 0, 0, 0,
                                        equal};
        memcpy(out, header, sizeof(header));
        a[R_NUM_ENTRIES] = num_tiles; a[R_NUM_GROUPS] = 0; a[R_NUM_SLOTS] = 0; a[R_WORDS] = group_offset;
        return PLAN_OK;
    }

    /* _write_split (chunk > 0 here: chunk < max_span, and chunk >= block_n or a ceiling of a positive). */
    int64_t num_entries = 0;
    for (int64_t k = 0; k < num_tiles; k++) num_entries += max64(ceildiv(tiles[k].span, chunk), 1);
    const int64_t num_slots = num_entries * heads;
    const int64_t items_end = HEADER + num_entries * ITEM_FIELDS;
    const int64_t counter_offset = items_end + num_tiles * GROUP_FIELDS;
    const int64_t words = counter_offset + num_tiles * heads;
    int code = PLAN_OK;
    if (a[A_HAS_MAX_SLOTS] && num_slots > a[A_MAX_SLOTS]) {
        a[R_NEEDED] = num_slots;
        code = PLAN_SLOTS;
    } else if (words > out_words) {
        a[R_NEEDED] = words;
        code = PLAN_WORDS;
    }
    if (code != PLAN_OK) {
        free(order);
        free(tiles);
        return code;
    }
    int32_t *item = out + HEADER, *group_row = out + items_end;
    int64_t first = 0;
    for (int64_t k = 0; k < num_tiles; k++, group_row += GROUP_FIELDS) {
        const Tile *tile = &tiles[order ? order[k] : k];
        const int64_t chunks = max64(ceildiv(tile->span, chunk), 1);
        for (int64_t j = 0; j < chunks; j++, item += ITEM_FIELDS) {
            const int64_t kv_lo = tile->lo + j * chunk;
            write_item(item, tile, kv_lo, min64(kv_lo + chunk, tile->hi), chunks > 1 ? first + j : -1, k, chunks,
                       first);
        }
        group_row[0] = wrap32(first); group_row[1] = wrap32(chunks); group_row[2] = tile->tok_base;
        group_row[3] = tile->qo_len; group_row[4] = tile->row_start; group_row[5] = group_row[6] = group_row[7] = 0;
        first += chunks;
    }
    free(order);
    free(tiles);
    memset(out + counter_offset, 0, (size_t)(words - counter_offset) * sizeof(int32_t));
    const int32_t header[HEADER] = {wrap32(num_slots), wrap32(num_tiles), wrap32(items_end), wrap32(heads), 0, 0,
                                    wrap32(counter_offset), equal};
    memcpy(out, header, sizeof(header));
    a[R_NUM_ENTRIES] = num_entries; a[R_NUM_GROUPS] = num_tiles; a[R_NUM_SLOTS] = num_slots; a[R_WORDS] = words;
    return PLAN_OK;
}

/* Total queries (qo_indptr[batch]) and the longest request's query count (0 for an empty batch) into
 * a[0], a[1], from qo_indptr at a[0] (int64 when a[1] is nonzero) of a[2] requests: what plan() needs
 * before choosing tile sizes. */
void ka_query_extent(int64_t *a) {
    const void *qo = (const void *)(intptr_t)a[0];
    const int is64 = a[1] != 0;
    const int64_t batch = a[2];
    int64_t most = 0;
    for (int64_t r = 0; r < batch; r++) {
        int64_t q = load(qo, is64, r + 1) - load(qo, is64, r);
        if (r == 0 || q > most) most = q;
    }
    a[0] = load(qo, is64, batch);
    a[1] = most;
}

/* Layout version, checked at load (and a call with no work: native_plan.py's overhead measurement). */
int ka_native_plan_abi(void) { return 2; }
