/*
 * Authorization rule lists (QEMU's authz-list document), parsed from JSON
 * and matched against an identity.  Pure code.  See io/authz-int.h.
 */
#include <fnmatch.h>
#include <jansson.h>
#include <string.h>

#include "io/authz-int.h"

typedef struct AuthzRule {
    char *match;
    bool allow;
    bool glob;
} AuthzRule;

struct AuthzList {
    bool default_allow;
    AuthzRule *rules;
    size_t n_rules;
};

void authz_list_free(AuthzList *list)
{
    size_t i;

    if (!list) {
        return;
    }
    for (i = 0; i < list->n_rules; i++) {
        g_free(list->rules[i].match);
    }
    g_free(list->rules);
    g_free(list);
}

static bool parse_policy(json_t *v, const char *where, const char *member,
                         bool *allow, Error **errp)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;

    if (s && !strcmp(s, "allow")) {
        *allow = true;
        return true;
    }
    if (s && !strcmp(s, "deny")) {
        *allow = false;
        return true;
    }
    error_setg(errp, "%s: '%s' must be \"allow\" or \"deny\"", where, member);
    return false;
}

static bool parse_rule(json_t *r, size_t i, const char *where, AuthzRule *out,
                       Error **errp)
{
    const char *key;
    json_t *v;

    if (!json_is_object(r)) {
        error_setg(errp, "%s: rule %zu is not an object", where, i + 1);
        return false;
    }
    json_object_foreach(r, key, v)
    {
        if (!strcmp(key, "match")) {
            if (!json_is_string(v)) {
                error_setg(errp, "%s: rule %zu: 'match' must be a string",
                           where, i + 1);
                return false;
            }
            g_free(out->match);
            out->match = g_strdup(json_string_value(v));
        } else if (!strcmp(key, "policy")) {
            g_autofree char *what = g_strdup_printf("rule %zu: policy", i + 1);

            if (!parse_policy(v, where, what, &out->allow, errp)) {
                return false;
            }
        } else if (!strcmp(key, "format")) {
            const char *f = json_is_string(v) ? json_string_value(v) : "";

            if (strcmp(f, "exact") != 0 && strcmp(f, "glob") != 0) {
                error_setg(errp,
                           "%s: rule %zu: 'format' must be \"exact\" or "
                           "\"glob\"",
                           where, i + 1);
                return false;
            }
            out->glob = !strcmp(f, "glob");
        } else {
            error_setg(errp, "%s: rule %zu: member '%s' is unexpected", where,
                       i + 1, key);
            return false;
        }
    }
    if (!out->match || !json_object_get(r, "policy")) {
        error_setg(errp, "%s: rule %zu needs 'match' and 'policy'", where,
                   i + 1);
        return false;
    }
    return true;
}

AuthzList *authz_list_parse(const char *text, const char *where, Error **errp)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    AuthzList *list = g_new0(AuthzList, 1);
    const char *key;
    json_t *v;

    if (!doc) {
        error_setg(errp, "%s: not JSON: %s (line %d)", where, jerr.text,
                   jerr.line);
        goto fail;
    }
    if (!json_is_object(doc)) {
        error_setg(errp, "%s: expected a JSON object", where);
        goto fail;
    }
    json_object_foreach(doc, key, v)
    {
        if (!strcmp(key, "policy")) {
            if (!parse_policy(v, where, "policy", &list->default_allow, errp)) {
                goto fail;
            }
        } else if (!strcmp(key, "rules")) {
            size_t i;

            if (!json_is_array(v)) {
                error_setg(errp, "%s: 'rules' must be an array", where);
                goto fail;
            }
            list->rules = g_new0(AuthzRule, json_array_size(v));
            for (i = 0; i < json_array_size(v); i++) {
                list->n_rules = i + 1;
                if (!parse_rule(json_array_get(v, i), i, where, &list->rules[i],
                                errp)) {
                    goto fail;
                }
            }
        } else {
            error_setg(errp, "%s: member '%s' is unexpected", where, key);
            goto fail;
        }
    }
    json_decref(doc);
    return list;

fail:
    json_decref(doc);
    authz_list_free(list);
    return NULL;
}

bool authz_list_allows(const AuthzList *list, const char *identity,
                       size_t *rule)
{
    size_t i;

    for (i = 0; i < list->n_rules; i++) {
        const AuthzRule *r = &list->rules[i];

        if (r->glob ? fnmatch(r->match, identity, 0) == 0
                    : strcmp(r->match, identity) == 0) {
            *rule = i + 1;
            return r->allow;
        }
    }
    *rule = 0;
    return list->default_allow;
}
