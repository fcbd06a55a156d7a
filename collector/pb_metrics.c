/*
 * A decoder for ExportMetricsServiceRequest written for the metrics ingest
 * path. It builds the same protobuf-c structs protobuf_c_message_unpack()
 * would, in the request's arena, without protobuf-c's descriptor walk, its
 * allocation per sub-message and string, or the separate depth pre-check.
 *
 * It takes the shapes OTLP exporters send. For anything else it returns
 * SL_EUNSUPPORTED and decodes nothing the caller must keep; the caller then
 * runs protobuf-c (after its depth check) on the same bytes. Sent to
 * protobuf-c are: fields this schema does not know (protobuf-c keeps them as
 * unknown fields), tags longer than two bytes or padded ones, a known field
 * with an unexpected wire type, repeated scalars sent unpacked, a singular
 * message field or oneof given twice (protobuf-c merges or
 * replaces), AnyValue nesting deeper than PM_MAX_NEST, and every malformed
 * input. So every body either decodes here exactly as protobuf-c decodes it
 * (the differential fuzz target fuzz_otlp_metrics checks this: both results
 * must pack to the same bytes) or is decided by protobuf-c as before.
 *
 * Field numbers and wire types: proto/opentelemetry/proto/{common,resource,
 * metrics,collector/metrics}. Number parsing follows protobuf-c: varints of at
 * most 10 bytes with bits past 64 dropped, 32-bit fields keep the low 32 bits,
 * length prefixes of at most 5 bytes and at most INT_MAX.
 *
 * Thread: any (a decode worker); the arena belongs to the caller's thread.
 */
#include "decode_metrics.h"
#include "pb_wire.h"

#include <string.h>

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest pm_req;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pm_rm;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pm_sm;
typedef Opentelemetry__Proto__Metrics__V1__Metric pm_metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge pm_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum pm_sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram pm_histo;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram pm_ehisto;
typedef Opentelemetry__Proto__Metrics__V1__Summary pm_summary;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pm_num;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pm_hdp;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pm_edp;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets pm_bkts;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pm_sdp;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile pm_vaq;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pm_ex;

/* --- data points ----------------------------------------------------------------- */

static int pm_exemplar(pm *m, const uint8_t *p, const uint8_t *end, pm_ex *out) {
    static const pm_ex init = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(7, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->filtered_attributes, &out->n_filtered_attributes));
            break;
        case PM_TAG(2, PM_I64):
            PM_TRY(pm_fixed64(&p, end, &out->time_unix_nano));
            out->has_time_unix_nano = 1;
            break;
        case PM_TAG(3, PM_I64):
        case PM_TAG(6, PM_I64):
            if (out->value_case != OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE__NOT_SET) {
                return PM_NO;
            }
            PM_TRY(pm_fixed64(&p, end, &v));
            memcpy(&out->as_double, &v, sizeof(v)); /* as_double and as_int share it */
            out->value_case = (Opentelemetry__Proto__Metrics__V1__Exemplar__ValueCase)(tag >> 3);
            break;
        case PM_TAG(4, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->span_id));
            out->has_span_id = 1;
            break;
        case PM_TAG(5, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->trace_id));
            out->has_trace_id = 1;
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

static int pm_exemplar_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_exemplar(m, p, end, out);
}

/* Fields every data point type shares: start and time (fixed64) and flags. */
static int pm_common_field(const uint8_t **pp, const uint8_t *end, unsigned tag, uint64_t *start,
                           protobuf_c_boolean *has_start, uint64_t *time,
                           protobuf_c_boolean *has_time) {
    if (tag == PM_TAG(2, PM_I64)) {
        *has_start = 1;
        return pm_fixed64(pp, end, start);
    }
    if (tag == PM_TAG(3, PM_I64)) {
        *has_time = 1;
        return pm_fixed64(pp, end, time);
    }
    return PM_NO;
}

static int pm_flags(const uint8_t **pp, const uint8_t *end, uint32_t *flags,
                    protobuf_c_boolean *has) {
    uint64_t v;
    PM_TRY(pm_varint(pp, end, &v));
    *flags = (uint32_t)v;
    *has = 1;
    return 0;
}

static int pm_opt_double(const uint8_t **pp, const uint8_t *end, double *d,
                         protobuf_c_boolean *has) {
    *has = 1;
    return pm_double(pp, end, d);
}

static int pm_opt_fixed64(const uint8_t **pp, const uint8_t *end, uint64_t *v,
                          protobuf_c_boolean *has) {
    *has = 1;
    return pm_fixed64(pp, end, v);
}

static int pm_number_point(pm *m, const uint8_t *p, const uint8_t *end, pm_num *out) {
    static const pm_num init = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(7, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_I64):
        case PM_TAG(6, PM_I64):
            if (out->value_case !=
                OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET) {
                return PM_NO;
            }
            PM_TRY(pm_fixed64(&p, end, &v));
            memcpy(&out->as_double, &v, sizeof(v)); /* as_double and as_int share it */
            out->value_case =
                (Opentelemetry__Proto__Metrics__V1__NumberDataPoint__ValueCase)(tag >> 3);
            break;
        case PM_TAG(5, PM_LEN):
            PM_TRY(pm_msg_next(m, &p, end, (void ***)&out->exemplars, &out->n_exemplars,
                               sizeof(pm_ex), pm_exemplar_fn));
            break;
        case PM_TAG(8, PM_VARINT):
            PM_TRY(pm_flags(&p, end, &out->flags, &out->has_flags));
            break;
        default:
            PM_TRY(pm_common_field(&p, end, tag, &out->start_time_unix_nano,
                                   &out->has_start_time_unix_nano, &out->time_unix_nano,
                                   &out->has_time_unix_nano));
        }
    }
    return 0;
}

/* A packed repeated fixed64 or double field: the chunk [q, qe) appended to
 * arr (sized from pm_count's payload bytes). */
static int pm_packed64(const uint8_t *q, const uint8_t *qe, void *arr, size_t *n) {
    size_t len = (size_t)(qe - q);
    if (len % 8 != 0) {
        return PM_NO;
    }
    if (len == 0) {
        return 0; /* arr may be NULL: no elements in all */
    }
    uint64_t *out = (uint64_t *)arr + *n;
    for (size_t i = 0; i < len / 8; i++) {
        PM_TRY(pm_fixed64(&q, qe, &out[i]));
    }
    *n += len / 8;
    return 0;
}

static int pm_alloc64(pm *m, size_t bytes, void **arr) {
    *arr = NULL;
    if (bytes == 0) {
        return 0;
    }
    *arr = sl_arena_alloc(m->a, bytes); /* bytes / 8 elements, or fewer varints */
    return *arr != NULL ? 0 : SL_ENOMEM;
}

static int pm_histogram_point(pm *m, const uint8_t *p, const uint8_t *end, pm_hdp *out) {
    static const pm_hdp init = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
    pm_counts c;
    *out = init;
    PM_TRY(pm_count(p, end, (1u << 6) | (1u << 7), &c));
    PM_TRY(pm_alloc64(m, c.bytes[6], (void **)&out->bucket_counts));
    PM_TRY(pm_alloc64(m, c.bytes[7], (void **)&out->explicit_bounds));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(9, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_I64):
            PM_TRY(pm_opt_fixed64(&p, end, &out->count, &out->has_count));
            break;
        case PM_TAG(5, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->sum, &out->has_sum));
            break;
        case PM_TAG(6, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_packed64(q, qe, out->bucket_counts, &out->n_bucket_counts));
            break;
        case PM_TAG(7, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_packed64(q, qe, out->explicit_bounds, &out->n_explicit_bounds));
            break;
        case PM_TAG(8, PM_LEN):
            PM_TRY(pm_msg_next(m, &p, end, (void ***)&out->exemplars, &out->n_exemplars,
                               sizeof(pm_ex), pm_exemplar_fn));
            break;
        case PM_TAG(10, PM_VARINT):
            PM_TRY(pm_flags(&p, end, &out->flags, &out->has_flags));
            break;
        case PM_TAG(11, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->min, &out->has_min));
            break;
        case PM_TAG(12, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->max, &out->has_max));
            break;
        default:
            PM_TRY(pm_common_field(&p, end, tag, &out->start_time_unix_nano,
                                   &out->has_start_time_unix_nano, &out->time_unix_nano,
                                   &out->has_time_unix_nano));
        }
    }
    return 0;
}

static int pm_buckets_msg(pm *m, const uint8_t *p, const uint8_t *end, pm_bkts **outp) {
    static const pm_bkts init =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    pm_counts c;
    if (*outp != NULL) {
        return PM_NO; /* given twice: protobuf-c merges */
    }
    pm_bkts *out = sl_arena_alloc(m->a, sizeof(*out));
    if (out == NULL) {
        return SL_ENOMEM;
    }
    *out = init;
    PM_TRY(pm_count(p, end, (1u << 2), &c));
    /* Packed varints: at most one element per payload byte. */
    PM_TRY(pm_alloc64(m, c.bytes[2] * sizeof(uint64_t), (void **)&out->bucket_counts));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(1, PM_VARINT)) {
            PM_TRY(pm_varint(&p, end, &v));
            uint32_t z = (uint32_t)v;
            out->offset = (int32_t)(z >> 1) ^ -(int32_t)(z & 1);
            out->has_offset = 1;
        } else if (tag == PM_TAG(2, PM_LEN)) {
            PM_TRY(pm_len(&p, end, &q, &qe));
            while (q < qe) {
                PM_TRY(pm_varint(&q, qe, &out->bucket_counts[out->n_bucket_counts++]));
            }
        } else {
            return PM_NO;
        }
    }
    *outp = out;
    return 0;
}

static int pm_exp_histogram_point(pm *m, const uint8_t *p, const uint8_t *end, pm_edp *out) {
    static const pm_edp init =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_I64):
            PM_TRY(pm_opt_fixed64(&p, end, &out->count, &out->has_count));
            break;
        case PM_TAG(5, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->sum, &out->has_sum));
            break;
        case PM_TAG(6, PM_VARINT): {
            PM_TRY(pm_varint(&p, end, &v));
            uint32_t z = (uint32_t)v;
            out->scale = (int32_t)(z >> 1) ^ -(int32_t)(z & 1);
            out->has_scale = 1;
            break;
        }
        case PM_TAG(7, PM_I64):
            PM_TRY(pm_opt_fixed64(&p, end, &out->zero_count, &out->has_zero_count));
            break;
        case PM_TAG(8, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_buckets_msg(m, q, qe, &out->positive));
            break;
        case PM_TAG(9, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_buckets_msg(m, q, qe, &out->negative));
            break;
        case PM_TAG(10, PM_VARINT):
            PM_TRY(pm_flags(&p, end, &out->flags, &out->has_flags));
            break;
        case PM_TAG(11, PM_LEN):
            PM_TRY(pm_msg_next(m, &p, end, (void ***)&out->exemplars, &out->n_exemplars,
                               sizeof(pm_ex), pm_exemplar_fn));
            break;
        case PM_TAG(12, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->min, &out->has_min));
            break;
        case PM_TAG(13, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->max, &out->has_max));
            break;
        case PM_TAG(14, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->zero_threshold, &out->has_zero_threshold));
            break;
        default:
            PM_TRY(pm_common_field(&p, end, tag, &out->start_time_unix_nano,
                                   &out->has_start_time_unix_nano, &out->time_unix_nano,
                                   &out->has_time_unix_nano));
        }
    }
    return 0;
}

static int pm_quantile(const uint8_t *p, const uint8_t *end, pm_vaq *out) {
    static const pm_vaq init =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__VALUE_AT_QUANTILE__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(1, PM_I64)) {
            PM_TRY(pm_opt_double(&p, end, &out->quantile, &out->has_quantile));
        } else if (tag == PM_TAG(2, PM_I64)) {
            PM_TRY(pm_opt_double(&p, end, &out->value, &out->has_value));
        } else {
            return PM_NO;
        }
    }
    return 0;
}

static int pm_summary_point(pm *m, const uint8_t *p, const uint8_t *end, pm_sdp *out) {
    static const pm_sdp init = OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
    pm_counts c;
    char *elems;
    *out = init;
    PM_TRY(pm_count(p, end, (1u << 6), &c));
    PM_TRY(PM_ARRAY(m, c.n[6], pm_vaq, &out->quantile_values, &elems));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(7, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_I64):
            PM_TRY(pm_opt_fixed64(&p, end, &out->count, &out->has_count));
            break;
        case PM_TAG(5, PM_I64):
            PM_TRY(pm_opt_double(&p, end, &out->sum, &out->has_sum));
            break;
        case PM_TAG(6, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_quantile(q, qe, out->quantile_values[out->n_quantile_values++]));
            break;
        case PM_TAG(8, PM_VARINT):
            PM_TRY(pm_flags(&p, end, &out->flags, &out->has_flags));
            break;
        default:
            PM_TRY(pm_common_field(&p, end, tag, &out->start_time_unix_nano,
                                   &out->has_start_time_unix_nano, &out->time_unix_nano,
                                   &out->has_time_unix_nano));
        }
    }
    return 0;
}

/* --- metrics ------------------------------------------------------------------------ */

/* The data points of a Gauge, Sum, Histogram, ExponentialHistogram or
 * Summary: field 1, repeated; aggregation_temporality is field 2 and Sum's
 * is_monotonic field 3. */

typedef struct pm_points {
    size_t *n;
    void ***arr;
    size_t elem;
    pm_point_fn parse;
    protobuf_c_boolean *has_temporality; /* NULL: no such field */
    Opentelemetry__Proto__Metrics__V1__AggregationTemporality *temporality;
    protobuf_c_boolean *has_monotonic; /* NULL: no such field */
    protobuf_c_boolean *monotonic;
} pm_points;

static int pm_data(pm *m, const uint8_t *p, const uint8_t *end, const pm_points *d) {
    pm_counts c;
    char *elems;
    PM_TRY(pm_count(p, end, (1u << 1), &c));
    PM_TRY(pm_array(m, c.n[1], d->elem, d->arr, &elems));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(1, PM_LEN)) {
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(d->parse(m, q, qe, (*d->arr)[(*d->n)++]));
        } else if (tag == PM_TAG(2, PM_VARINT) && d->temporality != NULL) {
            PM_TRY(pm_varint(&p, end, &v));
            *d->temporality =
                (Opentelemetry__Proto__Metrics__V1__AggregationTemporality)(int32_t)(uint32_t)v;
            *d->has_temporality = 1;
        } else if (tag == PM_TAG(3, PM_VARINT) && d->monotonic != NULL) {
            PM_TRY(pm_bool(&p, end, d->monotonic));
            *d->has_monotonic = 1;
        } else {
            return PM_NO;
        }
    }
    return 0;
}

static int pm_num_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_number_point(m, p, end, out);
}
static int pm_hdp_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_histogram_point(m, p, end, out);
}
static int pm_edp_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_exp_histogram_point(m, p, end, out);
}
static int pm_sdp_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_summary_point(m, p, end, out);
}

/* The Metric's data oneof (fields 5, 7, 9, 10, 11). */
static int pm_metric_data(pm *m, unsigned field, const uint8_t *p, const uint8_t *end,
                          pm_metric *out) {
    static const pm_gauge ginit = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    static const pm_sum sinit = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    static const pm_histo hinit = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    static const pm_ehisto einit = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    static const pm_summary yinit = OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    if (out->data_case != OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET) {
        return PM_NO; /* a second member of the oneof */
    }
    pm_points d = {0};
    void *msg;
    switch (field) {
    case 5: {
        pm_gauge *g = sl_arena_alloc(m->a, sizeof(*g));
        if (g == NULL) {
            return SL_ENOMEM;
        }
        *g = ginit;
        d = (pm_points){&g->n_data_points,
                        (void ***)&g->data_points,
                        sizeof(pm_num),
                        pm_num_fn,
                        NULL,
                        NULL,
                        NULL,
                        NULL};
        msg = g;
        break;
    }
    case 7: {
        pm_sum *s = sl_arena_alloc(m->a, sizeof(*s));
        if (s == NULL) {
            return SL_ENOMEM;
        }
        *s = sinit;
        d = (pm_points){&s->n_data_points,
                        (void ***)&s->data_points,
                        sizeof(pm_num),
                        pm_num_fn,
                        &s->has_aggregation_temporality,
                        &s->aggregation_temporality,
                        &s->has_is_monotonic,
                        &s->is_monotonic};
        msg = s;
        break;
    }
    case 9: {
        pm_histo *h = sl_arena_alloc(m->a, sizeof(*h));
        if (h == NULL) {
            return SL_ENOMEM;
        }
        *h = hinit;
        d = (pm_points){&h->n_data_points,
                        (void ***)&h->data_points,
                        sizeof(pm_hdp),
                        pm_hdp_fn,
                        &h->has_aggregation_temporality,
                        &h->aggregation_temporality,
                        NULL,
                        NULL};
        msg = h;
        break;
    }
    case 10: {
        pm_ehisto *e = sl_arena_alloc(m->a, sizeof(*e));
        if (e == NULL) {
            return SL_ENOMEM;
        }
        *e = einit;
        d = (pm_points){&e->n_data_points,
                        (void ***)&e->data_points,
                        sizeof(pm_edp),
                        pm_edp_fn,
                        &e->has_aggregation_temporality,
                        &e->aggregation_temporality,
                        NULL,
                        NULL};
        msg = e;
        break;
    }
    default: { /* 11 */
        pm_summary *y = sl_arena_alloc(m->a, sizeof(*y));
        if (y == NULL) {
            return SL_ENOMEM;
        }
        *y = yinit;
        d = (pm_points){&y->n_data_points,
                        (void ***)&y->data_points,
                        sizeof(pm_sdp),
                        pm_sdp_fn,
                        NULL,
                        NULL,
                        NULL,
                        NULL};
        msg = y;
        break;
    }
    }
    PM_TRY(pm_data(m, p, end, &d));
    out->gauge = msg; /* every member of the union is a pointer */
    out->data_case = (Opentelemetry__Proto__Metrics__V1__Metric__DataCase)field;
    return 0;
}

static int pm_metric_msg(pm *m, const uint8_t *p, const uint8_t *end, pm_metric *out) {
    static const pm_metric init = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->name));
            break;
        case PM_TAG(2, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->description));
            break;
        case PM_TAG(3, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->unit));
            break;
        case PM_TAG(5, PM_LEN):
        case PM_TAG(7, PM_LEN):
        case PM_TAG(9, PM_LEN):
        case PM_TAG(10, PM_LEN):
        case PM_TAG(11, PM_LEN):
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_metric_data(m, tag >> 3, q, qe, out));
            break;
        case PM_TAG(12, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->metadata, &out->n_metadata));
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

static int pm_metric_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_metric_msg(m, p, end, out);
}
static int pm_scope_metrics(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    static const pm_sm init = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    pm_sm *out = msg;
    *out = init;
    pm_level l = {(void **)&out->scope, sizeof(*out->scope), pm_scope_fn,  (void ***)&out->metrics,
                  &out->n_metrics,      sizeof(pm_metric),   pm_metric_fn, &out->schema_url};
    return pm_level_msg(m, p, end, &l);
}

static int pm_resource_metrics(pm *m, const uint8_t *p, const uint8_t *end, void *msg) {
    static const pm_rm init = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    pm_rm *out = msg;
    *out = init;
    pm_level l = {(void **)&out->resource, sizeof(*out->resource),
                  pm_resource_fn,          (void ***)&out->scope_metrics,
                  &out->n_scope_metrics,   sizeof(pm_sm),
                  pm_scope_metrics,        &out->schema_url};
    return pm_level_msg(m, p, end, &l);
}

int col_metrics_unpack(const uint8_t *buf, size_t len, sl_arena *a, pm_req **out) {
    static const pm_req init =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    pm m = {.a = a, .nest = 0};
    *out = NULL;
    pm_req *req = sl_arena_alloc(a, sizeof(*req));
    if (req == NULL) {
        return SL_ENOMEM;
    }
    *req = init;
    PM_TRY(pm_request(&m, buf, len, (void ***)&req->resource_metrics, &req->n_resource_metrics,
                      sizeof(pm_rm), pm_resource_metrics));
    *out = req;
    return 0;
}
