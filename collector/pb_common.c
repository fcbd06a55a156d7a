/*
 * The common messages of the collector's written OTLP protobuf decoders
 * (pb_wire.h): KeyValue, AnyValue, InstrumentationScope, Resource and the
 * resource and scope levels, as protobuf-c would unpack them.
 *
 * Thread: any (a decode worker); the arena belongs to the caller's thread.
 */
#include "pb_wire.h"

/* Only the fields in mask (bit f for field f) are counted; the other entries
 * of c stay unset. */
int pm_count(const uint8_t *p, const uint8_t *end, unsigned mask, pm_counts *c) {
    for (unsigned m = mask; m != 0; m &= m - 1) {
        unsigned f = (unsigned)__builtin_ctz(m);
        c->n[f] = 0;
        c->bytes[f] = 0;
    }
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        if ((tag & 7) == PM_LEN) {
            const uint8_t *q, *qe;
            PM_TRY(pm_len(&p, end, &q, &qe));
            if ((tag >> 3) < 16 && (mask & (1u << (tag >> 3)))) {
                c->n[tag >> 3]++;
                c->bytes[tag >> 3] += (size_t)(qe - q);
            }
        } else {
            PM_TRY(pm_skip(&p, end, tag & 7));
        }
    }
    return 0;
}

/* How many fields with this (length-delimited) tag there are from p, which
 * is at one of them, to the end of the message: a repeated field's array is
 * sized when its first element is met, so messages without the field (most
 * data points have no exemplars, many no attributes) pay no counting pass. */
int pm_count_tag(const uint8_t *p, const uint8_t *end, unsigned tag, uint32_t *n) {
    *n = 0;
    while (p < end) {
        unsigned t;
        PM_TRY(pm_tag(&p, end, &t));
        if ((t & 7) == PM_LEN) {
            const uint8_t *q, *qe;
            PM_TRY(pm_len(&p, end, &q, &qe));
            *n += t == tag;
        } else {
            PM_TRY(pm_skip(&p, end, t & 7));
        }
    }
    return 0;
}

int pm_kvs_alloc(pm *m, uint32_t n, pm_kv ***arr) {
    char *elems;
    return PM_ARRAY(m, n, pm_kvav, arr, &elems);
}

static int pm_anyvalue(pm *m, const uint8_t *p, const uint8_t *end, pm_av *out) {
    static const pm_av init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        uint64_t v;
        PM_TRY(pm_tag(&p, end, &tag));
        if (out->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
            return PM_NO; /* every field is in the oneof: a second one is replaced */
        }
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->string_value));
            break;
        case PM_TAG(2, PM_VARINT):
            PM_TRY(pm_bool(&p, end, &out->bool_value));
            break;
        case PM_TAG(3, PM_VARINT):
            PM_TRY(pm_varint(&p, end, &v));
            out->int_value = (int64_t)v;
            break;
        case PM_TAG(4, PM_I64):
            PM_TRY(pm_double(&p, end, &out->double_value));
            break;
        case PM_TAG(5, PM_LEN): {
            static const pm_arr ainit = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
            pm_counts c;
            char *elems;
            PM_TRY(pm_len(&p, end, &q, &qe));
            if (++m->nest > PM_MAX_NEST) {
                return PM_NO;
            }
            pm_arr *arr = sl_arena_alloc(m->a, sizeof(*arr));
            if (arr == NULL) {
                return SL_ENOMEM;
            }
            *arr = ainit;
            PM_TRY(pm_count(q, qe, (1u << 1), &c));
            PM_TRY(PM_ARRAY(m, c.n[1], pm_av, &arr->values, &elems));
            while (q < qe) {
                const uint8_t *r, *re;
                unsigned t;
                PM_TRY(pm_tag(&q, qe, &t));
                if (t != PM_TAG(1, PM_LEN)) {
                    return PM_NO;
                }
                PM_TRY(pm_len(&q, qe, &r, &re));
                PM_TRY(pm_anyvalue(m, r, re, arr->values[arr->n_values++]));
            }
            m->nest--;
            out->array_value = arr;
            break;
        }
        case PM_TAG(6, PM_LEN): {
            static const pm_kvl linit = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
            pm_counts c;
            PM_TRY(pm_len(&p, end, &q, &qe));
            if (++m->nest > PM_MAX_NEST) {
                return PM_NO;
            }
            pm_kvl *l = sl_arena_alloc(m->a, sizeof(*l));
            if (l == NULL) {
                return SL_ENOMEM;
            }
            *l = linit;
            PM_TRY(pm_count(q, qe, (1u << 1), &c));
            PM_TRY(pm_kvs_alloc(m, c.n[1], &l->values));
            while (q < qe) {
                const uint8_t *r, *re;
                unsigned t;
                PM_TRY(pm_tag(&q, qe, &t));
                if (t != PM_TAG(1, PM_LEN)) {
                    return PM_NO;
                }
                PM_TRY(pm_len(&q, qe, &r, &re));
                PM_TRY(pm_keyvalue(m, r, re, (pm_kvav *)(void *)l->values[l->n_values++]));
            }
            m->nest--;
            out->kvlist_value = l;
            break;
        }
        case PM_TAG(7, PM_LEN):
            PM_TRY(pm_field_bytes(m, &p, end, &out->bytes_value));
            break;
        default:
            return PM_NO;
        }
        out->value_case = (Opentelemetry__Proto__Common__V1__AnyValue__ValueCase)(tag >> 3);
    }
    return 0;
}

int pm_keyvalue(pm *m, const uint8_t *p, const uint8_t *end, pm_kvav *out) {
    PM_CONST_CAST_BEGIN
    static const pm_kv init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    PM_CONST_CAST_END
    out->kv = init;
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(1, PM_LEN)) {
            PM_TRY(pm_field_string(m, &p, end, &out->kv.key));
        } else if (tag == PM_TAG(2, PM_LEN) && out->kv.value == NULL) {
            PM_TRY(pm_len(&p, end, &q, &qe));
            PM_TRY(pm_anyvalue(m, q, qe, &out->av));
            out->kv.value = &out->av;
        } else {
            return PM_NO;
        }
    }
    return 0;
}

/* One element of a repeated KeyValue field whose (one-byte) tag was just
 * read, into the next slot of *arr; the first one sizes the array. */
int pm_kv_next(pm *m, const uint8_t **pp, const uint8_t *end, pm_kv ***arr, size_t *n) {
    const uint8_t *q, *qe;
    if (*arr == NULL) {
        uint32_t count;
        PM_TRY(pm_count_tag(*pp - 1, end, (*pp)[-1], &count));
        PM_TRY(pm_kvs_alloc(m, count, arr));
    }
    PM_TRY(pm_len(pp, end, &q, &qe));
    return pm_keyvalue(m, q, qe, (pm_kvav *)(void *)(*arr)[(*n)++]);
}

int pm_scope_msg(pm *m, const uint8_t *p, const uint8_t *end, pm_scope *out) {
    PM_CONST_CAST_BEGIN
    static const pm_scope init = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    PM_CONST_CAST_END
    *out = init;
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        switch (tag) {
        case PM_TAG(1, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->name));
            break;
        case PM_TAG(2, PM_LEN):
            PM_TRY(pm_field_string(m, &p, end, &out->version));
            break;
        case PM_TAG(3, PM_LEN):
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
            break;
        case PM_TAG(4, PM_VARINT):
            PM_TRY(pm_uint32(&p, end, &out->dropped_attributes_count));
            break;
        default:
            return PM_NO;
        }
    }
    return 0;
}

int pm_resource(pm *m, const uint8_t *p, const uint8_t *end, pm_res *out) {
    static const pm_res init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    *out = init;
    while (p < end) {
        unsigned tag;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag == PM_TAG(1, PM_LEN)) {
            PM_TRY(pm_kv_next(m, &p, end, &out->attributes, &out->n_attributes));
        } else if (tag == PM_TAG(2, PM_VARINT)) {
            PM_TRY(pm_uint32(&p, end, &out->dropped_attributes_count));
        } else {
            return PM_NO;
        }
    }
    return 0;
}

int pm_level_msg(pm *m, const uint8_t *p, const uint8_t *end, const pm_level *l) {
    pm_counts c;
    char *elems;
    PM_TRY(pm_count(p, end, (1u << 2), &c));
    PM_TRY(pm_array(m, c.n[2], l->many_size, l->many, &elems));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        PM_TRY(tag == PM_TAG(1, PM_LEN) || tag == PM_TAG(2, PM_LEN) || tag == PM_TAG(3, PM_LEN)
                   ? pm_len(&p, end, &q, &qe)
                   : PM_NO);
        if (tag == PM_TAG(1, PM_LEN)) {
            if (*l->one != NULL) {
                return PM_NO; /* given twice: protobuf-c merges */
            }
            if ((*l->one = sl_arena_alloc(m->a, l->one_size)) == NULL) {
                return SL_ENOMEM;
            }
            PM_TRY(l->parse_one(m, q, qe, *l->one));
        } else if (tag == PM_TAG(2, PM_LEN)) {
            PM_TRY(l->parse_many(m, q, qe, (*l->many)[(*l->nmany)++]));
        } else {
            PM_TRY(pm_string(m, q, qe, l->schema_url));
        }
    }
    return 0;
}

int pm_scope_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_scope_msg(m, p, end, out);
}
int pm_resource_fn(pm *m, const uint8_t *p, const uint8_t *end, void *out) {
    return pm_resource(m, p, end, out);
}

int pm_msg_next(pm *m, const uint8_t **pp, const uint8_t *end, void ***arr, size_t *n, size_t elem,
                pm_point_fn parse) {
    const uint8_t *q, *qe;
    if (*arr == NULL) {
        uint32_t count;
        char *elems;
        PM_TRY(pm_count_tag(*pp - 1, end, (*pp)[-1], &count));
        PM_TRY(pm_array(m, count, elem, arr, &elems));
    }
    PM_TRY(pm_len(pp, end, &q, &qe));
    return parse(m, q, qe, (*arr)[(*n)++]);
}

int pm_request(pm *m, const uint8_t *buf, size_t len, void ***arr, size_t *n, size_t elem,
               pm_point_fn parse) {
    pm_counts c;
    char *elems;
    if (len == 0) {
        return 0; /* an empty request (buf may be NULL: no pointer arithmetic on it) */
    }
    const uint8_t *p = buf, *end = buf + len;
    PM_TRY(pm_count(p, end, (1u << 1), &c));
    PM_TRY(pm_array(m, c.n[1], elem, arr, &elems));
    while (p < end) {
        unsigned tag;
        const uint8_t *q, *qe;
        PM_TRY(pm_tag(&p, end, &tag));
        if (tag != PM_TAG(1, PM_LEN)) {
            return PM_NO;
        }
        PM_TRY(pm_len(&p, end, &q, &qe));
        PM_TRY(parse(m, q, qe, (*arr)[(*n)++]));
    }
    return 0;
}
