/*
 * fleet-tenants' calls to users and notifications, made by the sign-up
 * saga's steps (on the thread driving the saga: inside a request, their
 * CLIENT spans are children of its SERVER span) and by PATCH.
 */
#include "tenants_int.h"

#include <stdio.h>

/* Makes a call and turns anything but one of the ok statuses into an error
 * with its reason. */
static int call(tenants_svc *s, const char *upstream, const char *base, const char *method,
                const char *path, json_t *body, long ok1, long ok2, char *why, size_t cap) {
    json_t *answer = NULL;
    long st = 0;
    int rc = fc_api_call(s->app, upstream, base, method, path, body, &st, &answer);
    if (rc != 0 || (st != ok1 && st != ok2)) {
        fc_api_call_why(upstream, rc, st, answer, why, cap);
        rc = rc != 0 ? rc : SL_EINVAL;
    }
    json_decref(answer);
    json_decref(body);
    return rc;
}

int tenants_create_admin(tenants_svc *s, const char *tenant, const char *user_id, const char *email,
                         const char *name, char *why, size_t cap) {
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", user_id, "email", email,
                          "display_name", name, "role", "admin", "tenant", tenant);
    return b ? call(s, "users", s->users_url, "POST", "/v2/users", b, 201, 200, why, cap)
             : SL_ENOMEM;
}

int tenants_delete_admin(tenants_svc *s, const char *tenant, const char *user_id, char *why,
                         size_t cap) {
    char path[200];
    snprintf(path, sizeof path, "/v2/users/%s?tenant=%s", user_id, tenant);
    return call(s, "users", s->users_url, "DELETE", path, NULL, 204, 404, why, cap);
}

int tenants_request_welcome(tenants_svc *s, const char *tenant, const char *notification_id,
                            const char *webhook_url, const json_t *data, char *why, size_t cap) {
    json_t *b = json_pack("{s:s, s:s, s:s, s:O}", "id", notification_id, "tenant", tenant, "type",
                          "tenant.welcome", "data", data);
    if (b && webhook_url) {
        json_object_set_new(b, "webhook_url", json_string(webhook_url));
    }
    return b ? call(s, "notifications", s->notifications_url, "POST", "/v1/notifications", b, 202,
                    202, why, cap)
             : SL_ENOMEM;
}

int tenants_set_webhook(tenants_svc *s, const char *tenant, const char *url, char *why,
                        size_t cap) {
    char path[160];
    snprintf(path, sizeof path, "/v1/notifications/webhooks/%s", tenant);
    json_t *b = json_pack("{s:s}", "url", url);
    return b ? call(s, "notifications", s->notifications_url, "PUT", path, b, 200, 200, why, cap)
             : SL_ENOMEM;
}
