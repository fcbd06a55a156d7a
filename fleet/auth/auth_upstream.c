/*
 * fleet-auth's calls to users: the profile made at sign-up, and its removal
 * when the sign-up cannot finish. Runs on the request's thread, so the
 * runtime client's CLIENT span is a child of the sign-up's SERVER span.
 */
#include "auth_int.h"

#include <sf/sf_telemetry.h>
#include <stdio.h>

int auth_users_create(auth_svc *s, const cred *c, const char *name, unsigned *status, char *why,
                      size_t cap) {
    json_t *answer = NULL;
    long st = 0;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", c->user_id, "email", c->email,
                             "display_name", name, "role", c->role, "tenant", c->tenant);
    int rc =
        body ? fc_api_call(s->app, "users", s->users_url, "POST", "/v2/users", body, &st, &answer)
             : SL_ENOMEM;
    json_decref(body);
    *status = (unsigned)st;
    if (rc != 0 || (st != 200 && st != 201)) {
        fc_api_call_why("users", rc, st, answer, why, cap);
        rc = rc != 0 ? rc : SL_EINVAL;
    }
    json_decref(answer);
    return rc;
}

void auth_users_delete(auth_svc *s, const cred *c) {
    char path[200];
    long st = 0;
    snprintf(path, sizeof path, "/v2/users/%s?tenant=%s", c->user_id, c->tenant);
    int rc = fc_api_call(s->app, "users", s->users_url, "DELETE", path, NULL, &st, NULL);
    if (rc != 0 || (st != 204 && st != 404)) {
        sf_log(SL_SEVERITY_ERROR, "could not remove the profile of unfinished sign-up %s: %s %ld",
               c->user_id, rc ? sf_strerror(rc) : "status", st);
    }
}
