/*
 * Active health checks over libcurl's multi interface; see reg_check.h. A
 * window of at most max_concurrent easy handles is kept busy: each finished
 * transfer records its verdict and its handle is reused for the next item.
 */
#include "reg_check.h"

#include "sl_err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reg_check_item_init(reg_check_item *item, const char *id, const char *address) {
    memset(item, 0, sizeof(*item));
    snprintf(item->id, sizeof(item->id), "%s", id);
    size_t n = strlen(address);
    if (n > 0 && address[n - 1] == '/') {
        n--;
    }
    snprintf(item->url, sizeof(item->url), "%.*s/health", (int)n, address);
    item->ok = true;
}

/* Health bodies are small and ignored: count and drop them. */
static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

static void start(CURLM *multi, CURL *e, reg_check_item *item, long timeout_ms) {
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, item->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, item);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sightline-fleet-registry/health-check");
    curl_multi_add_handle(multi, e);
}

int reg_check_run(reg_check_item *items, size_t n, int max_concurrent, long timeout_ms,
                  const atomic_bool *stop) {
    if (n == 0) {
        return 0;
    }
    if (max_concurrent < 1) {
        max_concurrent = 1;
    }
    size_t window = (size_t)max_concurrent < n ? (size_t)max_concurrent : n;
    int rc = 0;
    CURLM *multi = curl_multi_init();
    CURL **easy = calloc(window, sizeof(*easy));
    if (multi == NULL || easy == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    size_t next = 0, running = 0;
    for (size_t k = 0; k < window; k++) {
        if ((easy[k] = curl_easy_init()) == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        start(multi, easy[k], &items[next++], timeout_ms);
        running++;
    }
    while (running > 0) {
        if (stop != NULL && atomic_load(stop)) {
            rc = SL_ESHUTDOWN;
            break;
        }
        int still;
        curl_multi_perform(multi, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            reg_check_item *item = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&item);
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            if (res != CURLE_OK) {
                item->ok = false;
                snprintf(item->output, sizeof(item->output), "%s", curl_easy_strerror(res));
            } else if (status < 200 || status > 299) {
                item->ok = false;
                snprintf(item->output, sizeof(item->output), "HTTP %ld", status);
            } else {
                item->ok = true;
                item->output[0] = '\0';
            }
            curl_multi_remove_handle(multi, e);
            running--;
            if (next < n) {
                start(multi, e, &items[next++], timeout_ms);
                running++;
            }
        }
        if (running > 0) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
out:
    if (easy != NULL) {
        for (size_t k = 0; k < window; k++) {
            if (easy[k] != NULL) {
                curl_multi_remove_handle(multi, easy[k]);
                curl_easy_cleanup(easy[k]);
            }
        }
    }
    free(easy);
    curl_multi_cleanup(multi);
    return rc;
}
