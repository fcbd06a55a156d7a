/*
 * fleet-tenants' private declarations: the service state, the plans, and
 * the calls the sign-up saga makes to users and notifications
 * (tenants_upstream.c).
 */
#ifndef TENANTS_INT_H
#define TENANTS_INT_H

#include "fc/fc_api.h"
#include "fc/fc_saga.h"

typedef struct tenants_svc {
    sf_app *app;
    fc_db *db;
    const char *users_url;         /* --users-url; NULL: found in the registry */
    const char *notifications_url; /* --notifications-url */
    sf_outbox *relay;
} tenants_svc;

/* Upstream calls made by saga steps and handlers. Each returns 0 on
 * success or a negative error with the reason in why. */
/* POST /v2/users (idempotent: the admin's id is fixed when the saga starts). */
int tenants_create_admin(tenants_svc *s, const char *tenant, const char *user_id, const char *email,
                         const char *name, char *why, size_t cap);
/* DELETE /v2/users/{id}; a 404 counts as done. */
int tenants_delete_admin(tenants_svc *s, const char *tenant, const char *user_id, char *why,
                         size_t cap);
/* POST /v1/notifications: the welcome message (idempotent by its id), with
 * the tenant's webhook URL (NULL: keep what notifications has). */
int tenants_request_welcome(tenants_svc *s, const char *tenant, const char *notification_id,
                            const char *webhook_url, const json_t *data, char *why, size_t cap);
/* PUT /v1/notifications/webhooks/{tenant}. */
int tenants_set_webhook(tenants_svc *s, const char *tenant, const char *url, char *why, size_t cap);

#endif
