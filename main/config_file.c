/*
 * YAML configuration file reader on libyaml's event parser: accepts exactly
 * one document holding one mapping of scalar keys to scalar values (an empty
 * file or document is an empty configuration). Single-threaded, start-up only.
 */
#include "config_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

int cfg_load_yaml(const char *path, cfg_set_fn set, void *ud, char *err, size_t err_size) {
    int rc = -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_event = false;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    /* States: 0 before the mapping, 1 expecting a key, 2 expecting a value,
     * 3 after the mapping. */
    int state = 0;
    char key[128] = "";
    int key_line = 0;
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, err_size, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "YAML syntax error");
            goto out;
        }
        have_event = true;
        int line = (int)ev.start_mark.line + 1;
        if (ev.type == YAML_STREAM_END_EVENT) {
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_MAPPING_START_EVENT:
            if (state != 0) {
                snprintf(err, err_size, "%s:%d: nested mappings are not supported", path, line);
                goto out;
            }
            state = 1;
            break;
        case YAML_MAPPING_END_EVENT:
            state = 3;
            break;
        case YAML_SCALAR_EVENT: {
            const char *text = (const char *)ev.data.scalar.value;
            if (state == 0 && ev.data.scalar.length == 0) {
                break; /* an empty document */
            }
            if (state == 1) {
                if (ev.data.scalar.length >= sizeof(key)) {
                    snprintf(err, err_size, "%s:%d: key too long", path, line);
                    goto out;
                }
                memcpy(key, text, ev.data.scalar.length + 1);
                key_line = line;
                state = 2;
            } else if (state == 2) {
                if (set(ud, key, text, key_line, err, err_size) != 0) {
                    goto out;
                }
                state = 1;
            } else {
                snprintf(err, err_size, "%s:%d: expected a mapping of settings", path, line);
                goto out;
            }
            break;
        }
        default:
            snprintf(err, err_size,
                     "%s:%d: values must be plain scalars (no lists, anchors or "
                     "nested mappings)",
                     path, line);
            goto out;
        }
        yaml_event_delete(&ev);
        have_event = false;
    }
    rc = 0;
out:
    if (have_event) {
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
