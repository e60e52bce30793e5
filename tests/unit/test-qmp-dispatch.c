/* Tests for daemon/qmp-dispatch.c: request checks, negotiation, arguments. */
#include <string.h>

#include "qmp-dispatch.h"

static json_t *cmd_caps(json_t *args, Error **errp)
{
    return json_object();
}

static const QmpArg echo_args[] = {
    {"text", QMP_ARG_STR, true},
    {"count", QMP_ARG_INT, false},
    {"loud", QMP_ARG_BOOL, false},
    {"thread", QMP_ARG_STR_OR_NULL, false},
    {NULL},
};

static json_t *cmd_echo(json_t *args, Error **errp)
{
    if (!qmp_args_check(args, echo_args, errp)) {
        return NULL;
    }
    return json_pack("{s:s,s:I,s:b}", "text", qmp_arg_str(args, "text", ""),
                     "count", (json_int_t)qmp_arg_int(args, "count", 1), "loud",
                     qmp_arg_bool(args, "loud", false));
}

static json_t *cmd_fail(json_t *args, Error **errp)
{
    error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "no such thing");
    return NULL;
}

static QmpPending *deferred;

static void cmd_defer(json_t *args, QmpPending *pending)
{
    deferred = pending;
}

static const QmpCommand table[] = {
    {"qmp_capabilities", cmd_caps, QMP_CMD_NEGOTIATION},
    {"echo", cmd_echo, 0},
    {"fail", cmd_fail, 0},
    {"defer", NULL, 0, cmd_defer},
    {NULL},
};

/* Runs request text; returns the response (caller decrefs). */
static json_t *run(const char *text, bool *negotiated)
{
    json_error_t jerr;
    json_t *req = json_loads(text, JSON_DECODE_ANY, &jerr);
    json_t *resp;

    g_assert_nonnull(req);
    resp = qmp_dispatch(table, req, negotiated);
    json_decref(req);
    return resp;
}

static void assert_error(json_t *resp, const char *cls, const char *desc)
{
    json_t *err = json_object_get(resp, "error");

    g_assert_nonnull(err);
    g_assert_cmpstr(json_string_value(json_object_get(err, "class")), ==, cls);
    if (!strstr(json_string_value(json_object_get(err, "desc")), desc)) {
        g_printerr("desc '%s' lacks '%s'\n",
                   json_string_value(json_object_get(err, "desc")), desc);
        g_assert_not_reached();
    }
    json_decref(resp);
}

static void test_dispatch_command_before_negotiation_is_refused(void)
{
    bool neg = false;

    assert_error(
        run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"x\"}}", &neg),
        "CommandNotFound", "Expecting capabilities negotiation");
    g_assert_false(neg);
}

static void test_dispatch_negotiation_succeeds_once(void)
{
    bool neg = false;
    json_t *resp = run("{\"execute\":\"qmp_capabilities\"}", &neg);

    g_assert_true(json_is_object(json_object_get(resp, "return")));
    g_assert_true(neg);
    json_decref(resp);
    assert_error(run("{\"execute\":\"qmp_capabilities\"}", &neg),
                 "CommandNotFound", "already complete");
}

static void test_dispatch_unknown_command_is_command_not_found(void)
{
    bool neg = true;

    assert_error(run("{\"execute\":\"no-such\"}", &neg), "CommandNotFound",
                 "The command no-such has not been found");
}

static void test_dispatch_id_is_echoed_on_success_and_error(void)
{
    bool neg = true;
    json_t *resp = run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"hi\"},"
                       "\"id\":{\"n\":[7]}}",
                       &neg);

    json_t *want = json_pack("{s:[i]}", "n", 7);

    g_assert_true(json_equal(json_object_get(resp, "id"), want));
    json_decref(want);
    json_decref(resp);
    resp = run("{\"execute\":\"fail\",\"id\":\"abc\"}", &neg);
    g_assert_cmpstr(json_string_value(json_object_get(resp, "id")), ==, "abc");
    assert_error(resp, "DeviceNotFound", "no such thing");
}

static void test_dispatch_return_carries_handler_value(void)
{
    bool neg = true;
    json_t *resp = run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"hi\","
                       "\"count\":3,\"loud\":true}}",
                       &neg);
    json_t *ret = json_object_get(resp, "return");

    g_assert_cmpstr(json_string_value(json_object_get(ret, "text")), ==, "hi");
    g_assert_cmpint(json_integer_value(json_object_get(ret, "count")), ==, 3);
    g_assert_true(json_is_true(json_object_get(ret, "loud")));
    g_assert_null(json_object_get(resp, "id"));
    json_decref(resp);
}

static void test_dispatch_non_object_request_is_refused(void)
{
    bool neg = true;

    assert_error(run("[1]", &neg), "GenericError",
                 "QMP input must be a JSON object");
}

static void test_dispatch_missing_execute_is_refused(void)
{
    bool neg = true;

    assert_error(run("{\"id\":1}", &neg), "GenericError",
                 "QMP input lacks member 'execute'");
}

static void test_dispatch_bad_member_types_are_refused(void)
{
    bool neg = true;

    assert_error(run("{\"execute\":1}", &neg), "GenericError",
                 "'execute' must be a string");
    assert_error(run("{\"execute\":\"echo\",\"arguments\":[]}", &neg),
                 "GenericError", "'arguments' must be an object");
    assert_error(run("{\"execute\":\"echo\",\"extra\":1}", &neg),
                 "GenericError", "QMP input member 'extra' is unexpected");
}

static void test_dispatch_argument_errors_name_the_argument(void)
{
    bool neg = true;

    assert_error(run("{\"execute\":\"echo\"}", &neg), "GenericError",
                 "Parameter 'text' is missing");
    assert_error(run("{\"execute\":\"echo\",\"arguments\":{\"text\":1}}", &neg),
                 "GenericError",
                 "Invalid parameter type for 'text', expected: string");
    assert_error(run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\","
                     "\"bogus\":1}}",
                     &neg),
                 "GenericError", "Parameter 'bogus' is unexpected");
}

static void test_dispatch_str_or_null_accepts_both(void)
{
    bool neg = true;
    json_t *resp = run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\","
                       "\"thread\":null}}",
                       &neg);

    g_assert_nonnull(json_object_get(resp, "return"));
    json_decref(resp);
    assert_error(run("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\","
                     "\"thread\":1}}",
                     &neg),
                 "GenericError", "expected: string or null");
}

static void store(void *opaque, json_t *resp)
{
    json_t **out = opaque;

    g_assert_null(*out);
    *out = resp;
}

/* An asynchronous command's reply comes when its work says so, with the
 * request's id; checks before the handler still answer at once. */
static void test_dispatch_async_reply_comes_later_with_id(void)
{
    bool negotiated = true;
    json_t *req = json_pack("{s:s,s:[i]}", "execute", "defer", "id", 3);
    json_t *resp = NULL;
    Error *err = NULL;

    qmp_dispatch_async(table, req, &negotiated, store, &resp);
    json_decref(req); /* the pending reply keeps what it needs */
    g_assert_null(resp);
    g_assert_nonnull(deferred);
    qmp_pending_return(g_steal_pointer(&deferred), json_pack("{s:i}", "n", 9));
    g_assert_nonnull(resp);
    g_assert_cmpint(json_integer_value(
                        json_object_get(json_object_get(resp, "return"), "n")),
                    ==, 9);
    g_assert_cmpint(
        json_integer_value(json_array_get(json_object_get(resp, "id"), 0)), ==,
        3);
    json_decref(resp);
    resp = NULL;

    req = json_pack("{s:s}", "execute", "defer");
    qmp_dispatch_async(table, req, &negotiated, store, &resp);
    json_decref(req);
    error_set(&err, ERROR_CLASS_DEVICE_NOT_FOUND, "gone");
    qmp_pending_error(g_steal_pointer(&deferred), err);
    g_assert_null(json_object_get(resp, "id"));
    assert_error(resp, "DeviceNotFound", "gone");
    resp = NULL;

    req = json_pack("{s:s,s:{s:i}}", "execute", "defer", "argumentz", "x", 1);
    qmp_dispatch_async(table, req, &negotiated, store, &resp);
    json_decref(req);
    g_assert_null(deferred);
    assert_error(resp, "GenericError", "'argumentz' is unexpected");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-dispatch/command-before-negotiation-is-refused",
                    test_dispatch_command_before_negotiation_is_refused);
    g_test_add_func("/qmp-dispatch/negotiation-succeeds-once",
                    test_dispatch_negotiation_succeeds_once);
    g_test_add_func("/qmp-dispatch/unknown-command-is-command-not-found",
                    test_dispatch_unknown_command_is_command_not_found);
    g_test_add_func("/qmp-dispatch/id-is-echoed-on-success-and-error",
                    test_dispatch_id_is_echoed_on_success_and_error);
    g_test_add_func("/qmp-dispatch/return-carries-handler-value",
                    test_dispatch_return_carries_handler_value);
    g_test_add_func("/qmp-dispatch/non-object-request-is-refused",
                    test_dispatch_non_object_request_is_refused);
    g_test_add_func("/qmp-dispatch/missing-execute-is-refused",
                    test_dispatch_missing_execute_is_refused);
    g_test_add_func("/qmp-dispatch/bad-member-types-are-refused",
                    test_dispatch_bad_member_types_are_refused);
    g_test_add_func("/qmp-dispatch/argument-errors-name-the-argument",
                    test_dispatch_argument_errors_name_the_argument);
    g_test_add_func("/qmp-dispatch/async-reply-comes-later-with-id",
                    test_dispatch_async_reply_comes_later_with_id);
    g_test_add_func("/qmp-dispatch/str-or-null-accepts-both",
                    test_dispatch_str_or_null_accepts_both);
    return g_test_run();
}
