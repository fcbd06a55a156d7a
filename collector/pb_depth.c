/*
 * A nesting-depth check for protobuf bodies, run before protobuf-c unpacks
 * them. protobuf-c recurses once per nested message without a limit, so a
 * small body nesting AnyValue arrays a hundred thousand levels deep would
 * overflow a decode worker's stack. This walk follows the schema (only fields
 * declared as messages are entered), recursing at most max_depth levels, and
 * otherwise only skips over bytes. Pure; runs on decode workers.
 */
#include "col_int.h"

#include "sl_err.h"
#include "sl_util.h"

/* Varint read with a one-byte fast path (tags and most lengths). */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    if (*p < end && **p < 0x80) {
        *out = *(*p)++;
        return 0;
    }
    return sl_get_uvarint(p, end, out);
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                int depth, int max_depth) {
    if (depth > max_depth) {
        return SL_EDECODE;
    }
    while (p < end) {
        uint64_t tag, len;
        if (get_varint(&p, end, &tag) != 0) {
            return SL_EDECODE;
        }
        switch (tag & 7) {
        case 0:
            if (get_varint(&p, end, &len) != 0) {
                return SL_EDECODE;
            }
            break;
        case 1:
            if (end - p < 8) {
                return SL_EDECODE;
            }
            p += 8;
            break;
        case 5:
            if (end - p < 4) {
                return SL_EDECODE;
            }
            p += 4;
            break;
        case 2: {
            if (get_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p)) {
                return SL_EDECODE;
            }
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                    : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = walk(f->descriptor, p, p + len, depth + 1, max_depth);
                if (rc != 0) {
                    return rc;
                }
            }
            p += len;
            break;
        }
        default:
            return SL_EDECODE; /* groups (3, 4) and invalid wire types */
        }
    }
    return 0;
}

int col_pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       int max_depth) {
    if (len == 0) {
        return 0; /* an empty message (buf may be NULL: no pointer arithmetic) */
    }
    return walk(d, buf, buf + len, 1, max_depth);
}
