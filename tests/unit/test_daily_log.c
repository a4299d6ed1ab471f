/*
 * The daily safety log of a scripted school day in Asia/Shanghai: exact summary
 * JSON, the Markdown lines in zh-CN and en, the CSV parsed back (RFC 4180),
 * outages across midnight, an empty day, bad input, and the midnight timer
 * (DST in Europe/Berlin). The hazard register's entries come from a real
 * register (hazards.c) driven through every action, read back the way daylog.c
 * reads hazard_log: each listed with the hazard as it was then, in both
 * languages, in the CSV, and across the day's boundaries. Times are written as local Shanghai times
 * and turned into UTC here with the fixed +08:00 offset, independently of the code tested.
 *
 * Golden files (tests/unit/data/daily_log/): a scripted history read the way the
 * gateway reads alarm_history must give those Markdown (zh-CN, en), CSV and
 * summary files byte for byte. A mismatch names the first differing line and
 * leaves <file>.actual beside the golden one for `diff -u`. To accept an
 * intended change: GW_UPDATE_GOLDEN=1 ./test_daily_log (then review the diff).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>

#include "daily_log.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* "2026-11-28 10:42:05" or "... 23:59:59.999" Shanghai -> Unix ms (UTC+8, no DST). */
static int64_t sh(const char *local)
{
    struct tm tm = {0};
    int ms = 0;
    int n = sscanf(local, "%d-%d-%d %d:%d:%d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
    assert_true(n == 6 || n == 7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return ((int64_t)timegm(&tm) - 8 * 3600) * SEC + ms;
}

static json_t *utc(int64_t ms)
{
    if (ms == 0) {
        return json_null();
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    snprintf(out, sizeof(out), "%s.%03dZ", buf, (int)(ms % 1000));
    return json_string(out);
}

/* A P/events (transition) or P/alarms (transition NULL) record, as gw_payload_alarm writes it. */
struct rec {
    const char *transition, *key, *rule, *cls, *state;
    const char *raised, *acked, *acked_by, *cleared; /* Shanghai local, NULL = null */
    int level;
    const char *by, *note, *shelved_until;
    double value;
    int test;
};

static char *record(const struct rec *r)
{
    char sensor[128];
    snprintf(sensor, sizeof(sensor), "%.*s", (int)(strchr(r->key, '/') - r->key), r->key);
    json_t *o = json_pack(
        "{sI ss ss ss ss ss sf so so so so si sb}", "seq", (json_int_t)7, "key", r->key, "sensor",
        sensor, "rule", r->rule, "class", r->cls, "state", r->state, "value", r->value, "raised_at",
        utc(r->raised ? sh(r->raised) : 0), "acked_at", utc(r->acked ? sh(r->acked) : 0),
        "acked_by", r->acked_by ? json_string(r->acked_by) : json_null(), "cleared_at",
        utc(r->cleared ? sh(r->cleared) : 0), "level", r->level, "condition", r->cleared == NULL);
    assert_non_null(o);
    if (r->test) {
        json_object_set_new(o, "test", json_true());
    }
    if (r->transition) {
        json_object_set_new(o, "transition", json_string(r->transition));
    }
    if (r->by) {
        json_object_set_new(o, "by", json_string(r->by));
    }
    if (r->note) {
        json_object_set_new(o, "note", json_string(r->note));
    }
    if (r->shelved_until) {
        json_object_set_new(o, "shelved_until", utc(sh(r->shelved_until)));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

#define FIRE "A-3F-smoke-301/smoke-detected"
#define EXIT "B-1F-exit-main/exit-locked-during-school-hours"
#define TEST "A-2F-smoke-201/smoke-detected"
#define PUMP "C-1F-pump-01/pump-fault"
#define HYDR "A-2F-hydrant-02/sensor-offline"
#define TESTER "王师傅, \"老王\"" /* a comma and a quote for the CSV */

#define NEV 14
#define NOPEN 2

struct scripted {
    struct gw_daily_event ev[NEV];
    char *payload[NEV];
    char *open[NOPEN];
    struct gw_daily_input in;
};

static const char *const offline_rules[] = {"sensor offline"};

static void scripted_day(struct scripted *s, const char *language)
{
    /* Open at midnight: the pump since yesterday 22:00 (acked), the hydrant silent since 23:30. */
    s->open[0] =
        record(&(struct rec){NULL, PUMP, "pump fault", "trouble", "acked", "2026-11-27 22:00:00",
                             "2026-11-27 22:10:00", "张工", NULL, 1, NULL, NULL, NULL, 1, 0});
    s->open[1] =
        record(&(struct rec){NULL, HYDR, "sensor offline", "trouble", "unacked",
                             "2026-11-27 23:40:00", NULL, NULL, NULL, 1, NULL, NULL, NULL, 600, 0});
    const struct {
        const char *at;
        struct rec r;
    } script[NEV] = {
        {"2026-11-28 00:20:00",
         {"clear", HYDR, "sensor offline", "trouble", "rtn_unacked", "2026-11-27 23:40:00", NULL,
          NULL, "2026-11-28 00:20:00", 1, NULL, NULL, NULL, 12, 0}},
        {"2026-11-28 07:30:00",
         {"clear", PUMP, "pump fault", "trouble", "normal", "2026-11-27 22:00:00",
          "2026-11-27 22:10:00", "张工", "2026-11-28 07:30:00", 1, NULL, NULL, NULL, 0, 0}},
        {"2026-11-28 08:00:00",
         {"raise", EXIT, "exit locked during school hours", "supervisory", "unacked",
          "2026-11-28 08:00:00", NULL, NULL, NULL, 0, NULL, NULL, NULL, 1, 0}},
        {"2026-11-28 09:00:00",
         {"shelve", EXIT, "exit locked during school hours", "supervisory", "shelved",
          "2026-11-28 08:00:00", NULL, NULL, NULL, 2, "李老师", "更换门锁", "2026-11-28 10:00:00",
          1, 0}},
        {"2026-11-28 10:00:00",
         {"unshelve", EXIT, "exit locked during school hours", "supervisory", "unacked",
          "2026-11-28 08:00:00", NULL, NULL, NULL, 2, NULL, "shelve expired", NULL, 1, 0}},
        {"2026-11-28 10:42:05",
         {"raise", FIRE, "smoke detected", "alarm", "unacked", "2026-11-28 10:42:05", NULL, NULL,
          NULL, 1, NULL, NULL, NULL, 1, 0}},
        {"2026-11-28 10:42:06", {NULL}}, /* a notification: no transition */
        {"2026-11-28 10:44:35",
         {"ack", FIRE, "smoke detected", "alarm", "acked", "2026-11-28 10:42:05",
          "2026-11-28 10:44:35", "王师傅", NULL, 1, "王师傅", "误报，已清洁探头", NULL, 1, 0}},
        {"2026-11-28 10:50:00",
         {"clear", FIRE, "smoke detected", "alarm", "acked", "2026-11-28 10:42:05",
          "2026-11-28 10:44:35", "王师傅", "2026-11-28 10:50:00", 1, NULL, NULL, NULL, 0, 0}},
        {"2026-11-28 10:51:00",
         {"reset", FIRE, "smoke detected", "alarm", "normal", "2026-11-28 10:42:05",
          "2026-11-28 10:44:35", "王师傅", "2026-11-28 10:50:00", 1, "王师傅", NULL, NULL, 0, 0}},
        {"2026-11-28 14:00:00",
         {"raise", TEST, "smoke detected", "alarm", "unacked", "2026-11-28 14:00:00", NULL, NULL,
          NULL, 1, NULL, NULL, NULL, 1, 1}},
        {"2026-11-28 14:00:30",
         {"ack", TEST, "smoke detected", "alarm", "acked", "2026-11-28 14:00:00",
          "2026-11-28 14:00:30", TESTER, NULL, 1, TESTER, NULL, NULL, 1, 1}},
        {"2026-11-28 14:01:00",
         {"clear", TEST, "smoke detected", "alarm", "normal", "2026-11-28 14:00:00",
          "2026-11-28 14:00:30", TESTER, "2026-11-28 14:01:00", 1, NULL, NULL, NULL, 0, 1}},
        {"2026-11-28 15:00:00", {NULL}}, /* not JSON at all */
    };
    for (int i = 0; i < NEV; i++) {
        if (script[i].r.key) {
            s->payload[i] = record(&script[i].r);
        } else if (i == 6) {
            s->payload[i] =
                strdup("{\"seq\":9,\"key\":\"" FIRE "\",\"class\":\"alarm\",\"level\":1,"
                       "\"text\":\"x\",\"kind\":\"raise\"}");
        } else {
            s->payload[i] = strdup("{\"key\":");
        }
        s->ev[i] = (struct gw_daily_event){sh(script[i].at), s->payload[i]};
    }
    s->in = (struct gw_daily_input){
        .school = "海淀一小",
        .language = language,
        .date = "2026-11-28",
        .start_ms = sh("2026-11-28 00:00:00"),
        .end_ms = sh("2026-11-29 00:00:00"),
        .events = s->ev,
        .nevents = NEV,
        .open_before = (const char *const *)s->open,
        .nopen_before = NOPEN,
        .offline_rules = offline_rules,
        .noffline_rules = 1,
    };
}

static void scripted_free(struct scripted *s)
{
    for (int i = 0; i < NEV; i++) {
        free(s->payload[i]);
    }
    for (int i = 0; i < NOPEN; i++) {
        free(s->open[i]);
    }
}

static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return;
        }
    }
    fail_msg("line not found: [%s] in\n%s", line, text);
}

static int setup_shanghai(void **state)
{
    (void)state;
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    return 0;
}

static const char *const expected_summary =
    "{\"date\":\"2026-11-28\",\"school\":\"海淀一小\",\"alarms\":{\"alarm\":1,\"supervisory\":1,"
    "\"trouble\":0},\"acked\":1,\"unacked\":1,\"mean_ack_s\":150,\"worst_ack_s\":150,"
    "\"outages\":1,\"outage_minutes\":20,\"hazards\":{\"opened\":0,\"closed\":0,\"overdue\":0},"
    "\"commands\":4}";

static void test_summary_exact(void **state)
{
    (void)state;
    struct scripted s;
    scripted_day(&s, "zh-CN");
    struct gw_daily_log log;
    char err[128] = "";
    assert_int_equal(gw_daily_log_build(&s.in, &log, err, sizeof(err)), 0);
    assert_string_equal(log.summary, expected_summary);
    assert_int_equal(log.skipped, 2); /* the notification and the broken record */
    gw_daily_log_free(&log);
    gw_daily_log_free(&log); /* twice is harmless */
    scripted_free(&s);
}

static void test_markdown_zh(void **state)
{
    (void)state;
    struct scripted s;
    scripted_day(&s, "zh-CN");
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&s.in, &log, NULL, 0), 0);
    const char *md = log.markdown;
    assert_memory_equal(md, "# 安全日志 2026-11-28 海淀一小\n",
                        strlen("# 安全日志 2026-11-28 海淀一小\n"));
    has_line(md, "### 火警（2）");
    has_line(md, "- 10:42:05 报警 **A-3F-smoke-301/smoke-detected**（smoke detected），"
                 "2 分 30 秒后由 王师傅 确认，10:50:00 恢复");
    has_line(md, "- [测试] 14:00:00 报警 **A-2F-smoke-201/smoke-detected**（smoke detected），"
                 "30 秒后由 王师傅, \"老王\" 确认，14:01:00 恢复");
    has_line(md, "### 监管报警（1）");
    has_line(md, "- 08:00:00 报警 **B-1F-exit-main/exit-locked-during-school-hours**"
                 "（exit locked during school hours），未确认，未恢复");
    has_line(md, "### 故障报警（2）");
    has_line(md, "- 2026-11-27 22:00:00 报警 **C-1F-pump-01/pump-fault**（pump fault），"
                 "10 分后由 张工 确认，07:30:00 恢复");
    has_line(md, "- 2026-11-27 23:40:00 报警 **A-2F-hydrant-02/sensor-offline**（sensor offline），"
                 "未确认，00:20:00 恢复");
    has_line(md, "- A-2F-hydrant-02 离线：2026-11-27 23:30:00 至 00:20:00，本日 20 分");
    has_line(md, "- 新增 0 项，整改关闭 0 项，逾期 0 项");
    has_line(md, "### 台账记录（0）");
    has_line(md, "- 09:00:00 李老师 搁置 B-1F-exit-main/exit-locked-during-school-hours，"
                 "至 10:00:00，备注：更换门锁");
    has_line(md, "- 10:44:35 王师傅 确认 A-3F-smoke-301/smoke-detected，备注：误报，已清洁探头");
    has_line(md, "- 10:51:00 王师傅 复位 A-3F-smoke-301/smoke-detected");
    has_line(md, "- 14:00:30 王师傅, \"老王\" 确认 A-2F-smoke-201/smoke-detected");
    has_line(md, "| 火警 | 1 |");
    has_line(md, "| 监管报警 | 1 |");
    has_line(md, "| 故障报警 | 0 |");
    has_line(md, "| 已确认 | 1 |");
    has_line(md, "| 未确认 | 1 |");
    has_line(md, "| 平均确认用时 | 2 分 30 秒 |");
    has_line(md, "| 最长确认用时 | 2 分 30 秒 |");
    has_line(md, "| 传感器离线 | 1 次，共 20 分钟 |");
    has_line(md, "| 隐患 新增/关闭/逾期 | 0/0/0 |");
    has_line(md, "| 操作命令 | 4 |");
    /* fire first, then supervisory, then trouble */
    const char *fire = strstr(md, "### 火警"), *sup = strstr(md, "### 监管报警"),
               *tr = strstr(md, "### 故障报警");
    assert_true(fire && sup && tr && fire < sup && sup < tr);
    /* the unshelve by the timer is no one's command */
    assert_null(strstr(md, "取消搁置"));
    gw_daily_log_free(&log);
    scripted_free(&s);
}

static void test_markdown_en(void **state)
{
    (void)state;
    struct scripted s;
    scripted_day(&s, "en");
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&s.in, &log, NULL, 0), 0);
    const char *md = log.markdown;
    has_line(md, "# Safety log 2026-11-28 海淀一小");
    has_line(md, "### Fire alarms (2)");
    has_line(md, "- 10:42:05 raised **A-3F-smoke-301/smoke-detected** (smoke detected), "
                 "acknowledged by 王师傅 after 2 min 30 s, cleared 10:50:00");
    has_line(md, "- [test] 14:00:00 raised **A-2F-smoke-201/smoke-detected** (smoke detected), "
                 "acknowledged by 王师傅, \"老王\" after 30 s, cleared 14:01:00");
    has_line(md, "- 08:00:00 raised **B-1F-exit-main/exit-locked-during-school-hours** "
                 "(exit locked during school hours), not acknowledged, not cleared");
    has_line(md, "### Trouble (2)");
    has_line(md, "- A-2F-hydrant-02 offline 2026-11-27 23:30:00 to 00:20:00, 20 min this day");
    has_line(md, "- opened 0, closed 0, overdue 0");
    has_line(md, "### Register entries (0)");
    has_line(md, "- 09:00:00 李老师 shelved B-1F-exit-main/exit-locked-during-school-hours "
                 "until 10:00:00, note: 更换门锁");
    has_line(md, "- 10:51:00 王师傅 reset A-3F-smoke-301/smoke-detected");
    has_line(md, "| Mean time to acknowledge | 2 min 30 s |");
    has_line(md, "| Sensor outages | 1, 20 min |");
    has_line(md, "| Commands | 4 |");
    assert_string_equal(log.summary, expected_summary); /* the summary has no language */
    gw_daily_log_free(&log);
    scripted_free(&s);
}

/* ---- a small RFC 4180 reader: rows of fields, CRLF line ends ---- */

#define MAXF 32
#define MAXR 24
struct csv {
    char field[MAXR][MAXF][128];
    int nfields[MAXR];
    int nrows;
};

static void parse_csv(const char *p, struct csv *c)
{
    memset(c, 0, sizeof(*c));
    while (*p) {
        assert_true(c->nrows < MAXR);
        int f = 0;
        for (;;) {
            assert_true(f < MAXF);
            char *out = c->field[c->nrows][f];
            size_t n = 0;
            if (*p == '"') {
                for (p++;; p++) {
                    assert_true(*p != '\0'); /* an unterminated quote */
                    if (*p == '"' && p[1] == '"') {
                        p++;
                    } else if (*p == '"') {
                        p++;
                        break;
                    }
                    assert_true(n < 127);
                    out[n++] = *p;
                }
            } else {
                for (; *p && *p != ',' && *p != '\r'; p++) {
                    assert_true(*p != '"' && *p != '\n');
                    assert_true(n < 127);
                    out[n++] = *p;
                }
            }
            f++;
            if (*p == ',') {
                p++;
                continue;
            }
            assert_memory_equal(p, "\r\n", 2);
            p += 2;
            break;
        }
        c->nfields[c->nrows++] = f;
    }
}

#define NCOLUMNS 28 /* 12 alarm columns, "record", 15 hazard columns */

/* An alarm row: its 12 columns, then "alarm" and the hazard columns empty. */
static void row_is(const struct csv *c, int r, const char *const *want)
{
    assert_int_equal(c->nfields[r], NCOLUMNS);
    for (int i = 0; i < 12; i++) {
        assert_string_equal(c->field[r][i], want[i]);
    }
    assert_string_equal(c->field[r][12], r == 0 ? "record" : "alarm");
    for (int i = 13; r > 0 && i < NCOLUMNS; i++) {
        assert_string_equal(c->field[r][i], "");
    }
}

static const char *const hazard_header[] = {"record",      "at",           "action",   "by",
                                            "category",    "building",     "floor",    "zone",
                                            "description", "responsible",  "deadline", "status",
                                            "verified_by", "source_alarm", "overdue",  "note"};

/* A hazard row: date and key (the hazard id), the alarm columns empty, then want: record
 * ("hazard") and the hazard columns. */
static void hazard_row_is(const struct csv *c, int r, const char *date, const char *id,
                          const char *const *want)
{
    assert_int_equal(c->nfields[r], NCOLUMNS);
    assert_string_equal(c->field[r][0], date);
    assert_string_equal(c->field[r][1], id);
    for (int i = 2; i < 12; i++) {
        assert_string_equal(c->field[r][i], "");
    }
    for (int i = 12; i < NCOLUMNS; i++) {
        assert_string_equal(c->field[r][i], want[i - 12]);
    }
}

static void test_csv(void **state)
{
    (void)state;
    struct scripted s;
    scripted_day(&s, "zh-CN");
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&s.in, &log, NULL, 0), 0);
    assert_memory_equal(log.csv, "\xEF\xBB\xBF", 3);
    static struct csv c;
    parse_csv(log.csv + 3, &c);
    assert_int_equal(c.nrows, 6); /* header + 5 occurrences, in raise order */
    row_is(&c, 0,
           (const char *const[]){"date", "key", "sensor", "rule", "class", "raised_at", "acked_at",
                                 "acked_by", "ack_after_s", "cleared_at", "level", "test"});
    for (int i = 12; i < NCOLUMNS; i++) {
        assert_string_equal(c.field[0][i], hazard_header[i - 12]);
    }
    row_is(&c, 1,
           (const char *const[]){"2026-11-28", PUMP, "C-1F-pump-01", "pump fault", "trouble",
                                 "2026-11-27 22:00:00", "2026-11-27 22:10:00", "张工", "600",
                                 "2026-11-28 07:30:00", "1", "false"});
    row_is(&c, 2,
           (const char *const[]){"2026-11-28", HYDR, "A-2F-hydrant-02", "sensor offline", "trouble",
                                 "2026-11-27 23:40:00", "", "", "", "2026-11-28 00:20:00", "1",
                                 "false"});
    row_is(&c, 3,
           (const char *const[]){"2026-11-28", EXIT, "B-1F-exit-main",
                                 "exit locked during school hours", "supervisory",
                                 "2026-11-28 08:00:00", "", "", "", "", "2", "false"});
    row_is(&c, 4,
           (const char *const[]){"2026-11-28", FIRE, "A-3F-smoke-301", "smoke detected", "alarm",
                                 "2026-11-28 10:42:05", "2026-11-28 10:44:35", "王师傅", "150",
                                 "2026-11-28 10:50:00", "1", "false"});
    row_is(&c, 5,
           (const char *const[]){"2026-11-28", TEST, "A-2F-smoke-201", "smoke detected", "alarm",
                                 "2026-11-28 14:00:00", "2026-11-28 14:00:30", TESTER, "30",
                                 "2026-11-28 14:01:00", "1", "true"});
    assert_non_null(strstr(log.csv, ",\"王师傅, \"\"老王\"\"\","));
    gw_daily_log_free(&log);
    scripted_free(&s);
}

static void test_empty_day(void **state)
{
    (void)state;
    for (int zh = 0; zh <= 1; zh++) {
        struct gw_daily_input in = {.school = "No. 1 School",
                                    .language = zh ? "zh-CN" : "en",
                                    .date = "2026-11-28",
                                    .start_ms = sh("2026-11-28 00:00:00"),
                                    .end_ms = sh("2026-11-29 00:00:00")};
        struct gw_daily_log log;
        assert_int_equal(gw_daily_log_build(&in, &log, NULL, 0), 0);
        assert_string_equal(
            log.summary,
            "{\"date\":\"2026-11-28\",\"school\":\"No. 1 School\",\"alarms\":{\"alarm\":0,"
            "\"supervisory\":0,\"trouble\":0},\"acked\":0,\"unacked\":0,\"mean_ack_s\":null,"
            "\"worst_ack_s\":null,\"outages\":0,\"outage_minutes\":0,\"hazards\":{\"opened\":0,"
            "\"closed\":0,\"overdue\":0},\"commands\":0}");
        assert_string_equal(log.csv, "\xEF\xBB\xBF"
                                     "date,key,sensor,rule,class,raised_at,acked_at,acked_by,"
                                     "ack_after_s,cleared_at,level,test,record,at,action,by,"
                                     "category,building,floor,zone,description,responsible,"
                                     "deadline,status,verified_by,source_alarm,overdue,note\r\n");
        has_line(log.markdown, zh ? "### 台账记录（0）" : "### Register entries (0)");
        has_line(log.markdown, zh ? "| 操作命令 | 0 |" : "| Commands | 0 |");
        has_line(log.markdown, zh ? "# 安全日志 2026-11-28 No. 1 School"
                                  : "# Safety log 2026-11-28 No. 1 School");
        has_line(log.markdown, zh ? "### 火警（0）" : "### Fire alarms (0)");
        has_line(log.markdown, zh ? "- 无" : "- none");
        has_line(log.markdown, zh ? "| 平均确认用时 | - |" : "| Mean time to acknowledge | - |");
        has_line(log.markdown,
                 zh ? "| 传感器离线 | 0 次，共 0 分钟 |" : "| Sensor outages | 0, 0 min |");
        assert_int_equal(log.skipped, 0);
        gw_daily_log_free(&log);
    }
}

/* Outages given by the caller: clipped to the day, one still going. */
static void test_given_outages(void **state)
{
    (void)state;
    const struct gw_daily_outage outages[] = {
        {"A-1F-door-01", sh("2026-11-27 20:00:00"), sh("2026-11-27 21:00:00")}, /* yesterday */
        {"A-2F-hydrant-02", sh("2026-11-28 09:00:00"), sh("2026-11-28 09:45:30")},
        {"LORA-temp-7", sh("2026-11-28 23:00:00"), 0},
    };
    struct gw_daily_input in = {.school = "S",
                                .language = "zh-CN",
                                .date = "2026-11-28",
                                .start_ms = sh("2026-11-28 00:00:00"),
                                .end_ms = sh("2026-11-29 00:00:00"),
                                .outages = outages,
                                .noutages = 3};
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&in, &log, NULL, 0), 0);
    /* 45.5 + 60 min = 105.5 -> 106 */
    assert_non_null(strstr(log.summary, "\"outages\":2,\"outage_minutes\":106,"));
    assert_non_null(strstr(log.summary, "\"overdue\":0},\"commands\":0}"));
    has_line(log.markdown, "- A-2F-hydrant-02 离线：09:00:00 至 09:45:30，本日 45 分 30 秒");
    has_line(log.markdown, "- LORA-temp-7 离线：23:00:00 起，仍未恢复，本日 1 小时");
    assert_null(strstr(log.markdown, "A-1F-door-01"));
    gw_daily_log_free(&log);
}

/* Rows without a recorded time: an ack falls back to its acked_at; Markdown-active text escaped. */
static void test_untimed_and_escaped(void **state)
{
    (void)state;
    char *raise =
        record(&(struct rec){"raise", "X-1/a_b", "rule *bold* | pipe", "trouble", "unacked",
                             "2026-11-28 12:00:00", NULL, NULL, NULL, 1, NULL, NULL, NULL, 1, 0});
    char *ack = record(&(struct rec){"ack", "X-1/a_b", "rule *bold* | pipe", "trouble", "acked",
                                     "2026-11-28 12:00:00", "2026-11-28 13:01:01", "=cmd|x", NULL,
                                     1, "=cmd|x", "line1\nline2", NULL, 1, 0});
    const struct gw_daily_event ev[] = {{0, raise}, {0, ack}, {0, NULL}};
    struct gw_daily_input in = {.school = "S",
                                .language = "en",
                                .date = "2026-11-28",
                                .start_ms = sh("2026-11-28 00:00:00"),
                                .end_ms = sh("2026-11-29 00:00:00"),
                                .events = ev,
                                .nevents = 3};
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&in, &log, NULL, 0), 0);
    has_line(log.markdown, "- 12:00:00 raised **X-1/a\\_b** (rule \\*bold\\* \\| pipe), "
                           "acknowledged by =cmd\\|x after 1 h 1 min, not cleared");
    has_line(log.markdown, "- 13:01:01 =cmd\\|x acknowledged X-1/a\\_b, note: line1 line2");
    /* a name that looks like a formula is not one in Excel */
    assert_non_null(strstr(log.csv, ",'=cmd|x,3661,"));
    assert_non_null(strstr(log.summary, "\"trouble\":1},\"acked\":1,\"unacked\":0,"
                                        "\"mean_ack_s\":3661,\"worst_ack_s\":3661,"));
    assert_int_equal(log.skipped, 1);
    gw_daily_log_free(&log);
    free(raise);
    free(ack);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct gw_daily_log log;
    char err[128];
    struct gw_daily_input in = {.school = "S",
                                .date = "2026-11-28",
                                .start_ms = sh("2026-11-28 00:00:00"),
                                .end_ms = sh("2026-11-29 00:00:00")};
    struct gw_daily_input bad = in;
    bad.school = NULL;
    assert_int_equal(gw_daily_log_build(&bad, &log, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "school and date are required");
    assert_null(log.markdown);
    bad = in;
    bad.date = "2026-11-31";
    assert_int_equal(gw_daily_log_build(&bad, &log, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "date is not YYYY-MM-DD");
    bad = in;
    bad.end_ms = bad.start_ms;
    assert_int_equal(gw_daily_log_build(&bad, &log, err, sizeof(err)), -EINVAL);
    bad = in;
    bad.nevents = 3;
    assert_int_equal(gw_daily_log_build(&bad, &log, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "a list has a count but no items");
    const struct gw_daily_outage nameless = {NULL, 1, 2};
    bad = in;
    bad.outages = &nameless;
    bad.noutages = 1;
    assert_int_equal(gw_daily_log_build(&bad, &log, err, sizeof(err)), -EINVAL);
    assert_int_equal(gw_daily_log_build(NULL, &log, NULL, 0), -EINVAL);
    assert_int_equal(gw_daily_log_build(&in, NULL, NULL, 0), -EINVAL);
    gw_daily_log_free(NULL);

    /* garbage records: skipped, never a crash */
    const char *junk[] = {"",
                          "[]",
                          "{}",
                          "null",
                          "{\"key\":5,\"class\":\"alarm\",\"transition\":\"raise\"}",
                          "{\"key\":\"a/b\",\"class\":\"fire\",\"transition\":\"raise\"}",
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"raise\","
                          "\"raised_at\":\"yesterday\",\"level\":-4,\"by\":7}"};
    struct gw_daily_event ev[7];
    for (int i = 0; i < 7; i++) {
        ev[i] = (struct gw_daily_event){sh("2026-11-28 01:00:00"), junk[i]};
    }
    in.events = ev;
    in.nevents = 7;
    assert_int_equal(gw_daily_log_build(&in, &log, err, sizeof(err)), 0);
    assert_int_equal(log.skipped, 6);
    /* the last one is an alarm with no known raise time: listed, not counted in the day */
    has_line(log.markdown, "- ? 报警 **a/b**（），未确认，未恢复");
    assert_non_null(strstr(log.summary, "\"alarm\":0,"));
    gw_daily_log_free(&log);
}

static void test_day_bounds(void **state)
{
    (void)state;
    int64_t a, b;
    assert_int_equal(gw_daily_log_day_bounds("2026-11-28", &a, &b), 0);
    assert_int_equal(a, sh("2026-11-28 00:00:00"));
    assert_int_equal(b, sh("2026-11-29 00:00:00"));
    assert_int_equal(gw_daily_log_day_bounds("2028-02-29", &a, &b), 0);
    assert_int_equal(b - a, 24 * HOUR);
    const char *bad[] = {"2026-02-29", "2026-13-01", "2026-1-01",  "2026-11-28x",
                         "20261128",   "abcd-ef-gh", "2026-11-00", "2026/11/28",
                         "",           "2026-+1-28"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_daily_log_day_bounds(bad[i], &a, &b), -EINVAL);
    }
    assert_int_equal(gw_daily_log_day_bounds(NULL, &a, &b), -EINVAL);

    char date[11];
    assert_int_equal(gw_daily_log_previous_day(sh("2026-11-29 00:05:00"), date, &a, &b), 0);
    assert_string_equal(date, "2026-11-28");
    assert_int_equal(a, sh("2026-11-28 00:00:00"));
    assert_int_equal(b, sh("2026-11-29 00:00:00"));
    assert_int_equal(gw_daily_log_previous_day(sh("2027-01-01 00:05:00"), date, &a, &b), 0);
    assert_string_equal(date, "2026-12-31");
}

static void test_next_run(void **state)
{
    (void)state;
    assert_int_equal(gw_daily_log_next_run_ms(sh("2026-11-28 10:00:00")),
                     sh("2026-11-29 00:05:00"));
    assert_int_equal(gw_daily_log_next_run_ms(sh("2026-11-29 00:03:00")),
                     sh("2026-11-29 00:05:00"));
    assert_int_equal(gw_daily_log_next_run_ms(sh("2026-11-29 00:05:00")),
                     sh("2026-11-30 00:05:00"));
    assert_int_equal(gw_daily_log_next_run_ms(sh("2026-12-31 23:59:59")),
                     sh("2027-01-01 00:05:00"));
}

/* Europe/Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25; 00:05 stays 00:05 local. */
static void test_dst(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    int64_t a, b;
    assert_int_equal(gw_daily_log_day_bounds("2026-03-29", &a, &b), 0);
    assert_int_equal(a, 1774738800LL * SEC); /* 2026-03-28T23:00:00Z */
    assert_int_equal(b - a, 23 * HOUR);
    assert_int_equal(gw_daily_log_day_bounds("2026-10-25", &a, &b), 0);
    assert_int_equal(b - a, 25 * HOUR);
    /* 2026-03-28 13:00 CET -> 2026-03-29 00:05 CET = 2026-03-28T23:05Z */
    assert_int_equal(gw_daily_log_next_run_ms(1774699200LL * SEC), 1774739100LL * SEC);
    /* 2026-03-29 12:00 CEST -> 2026-03-30 00:05 CEST = 2026-03-29T22:05Z */
    assert_int_equal(gw_daily_log_next_run_ms(1774778400LL * SEC), 1774821900LL * SEC);
    char date[11];
    assert_int_equal(gw_daily_log_previous_day(1774821900LL * SEC, date, &a, &b), 0);
    assert_string_equal(date, "2026-03-29");
    assert_int_equal(b - a, 23 * HOUR);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}

/* ---- golden files: a scripted history through gw_daily_history, as the gateway reads it ----
 *
 * The Markdown, the CSV and the summary of the scripted days must match the files under
 * tests/unit/data/daily_log/ byte for byte. On a mismatch the test names the first differing
 * line and writes what it got next to the golden file as <name>.actual (diff -u them). After
 * an intended change, run the test with GW_UPDATE_GOLDEN=1 to rewrite the golden files, and
 * review their diff before committing:
 *     GW_UPDATE_GOLDEN=1 ./test_daily_log
 */

#define BEFORE "A-1F-hydrant-01/hydrant-pressure-low" /* open since Nov 25, live now */
#define HELD "B-2F-firedoor-03/fire-door-held-open"   /* open since Nov 27, cleared Nov 29 */
#define GONE "OLD-1F-door-09/exit-door-open" /* open since Nov 20, its rule removed since */
#define LORA "LORA-temp-7/sensor-offline"
#define LAST "A-1F-smoke-101/smoke-detected" /* 23:59:59.999: the day's */
#define NEXT "A-1F-smoke-102/smoke-detected" /* 00:00:00.000: the next day's */

struct row {
    const char *at; /* Shanghai local, when it was recorded */
    struct rec r;   /* r.key NULL: raw below */
    const char *raw;
};

static const struct row history[] = {
    /* Nov 20: an alarm of a rule that was removed later (a restart ended it, no record) */
    {"2026-11-20 08:00:00",
     {"raise", GONE, "exit door open", "supervisory", "unacked", "2026-11-20 08:00:00", NULL, NULL,
      NULL, 1, NULL, NULL, NULL, 1, 0},
     NULL},
    /* Nov 25: the hydrant loses pressure; acked, never back */
    {"2026-11-25 08:00:00",
     {"raise", BEFORE, "hydrant pressure low", "supervisory", "unacked", "2026-11-25 08:00:00",
      NULL, NULL, NULL, 1, NULL, NULL, NULL, 0.05, 0},
     NULL},
    {"2026-11-25 08:30:00",
     {"ack", BEFORE, "hydrant pressure low", "supervisory", "acked", "2026-11-25 08:00:00",
      "2026-11-25 08:30:00", "张工", NULL, 1, "张工", "已报修", NULL, 0.05, 0},
     NULL},
    /* Nov 26: raised and over the same day: not carried */
    {"2026-11-26 09:00:00",
     {"raise", FIRE, "smoke detected", "alarm", "unacked", "2026-11-26 09:00:00", NULL, NULL, NULL,
      1, NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-26 09:01:00",
     {"ack", FIRE, "smoke detected", "alarm", "acked", "2026-11-26 09:00:00", "2026-11-26 09:01:00",
      "王师傅", NULL, 1, "王师傅", NULL, NULL, 1, 0},
     NULL},
    {"2026-11-26 09:05:00",
     {"reset", FIRE, "smoke detected", "alarm", "normal", "2026-11-26 09:00:00",
      "2026-11-26 09:01:00", "王师傅", "2026-11-26 09:03:00", 1, "王师傅", NULL, NULL, 0, 0},
     NULL},
    /* Nov 27: the fire door held open, the pump, the hydrant sensor going silent */
    {"2026-11-27 20:00:00",
     {"raise", HELD, "fire door held open", "supervisory", "unacked", "2026-11-27 20:00:00", NULL,
      NULL, NULL, 1, NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-27 22:00:00",
     {"raise", PUMP, "pump fault", "trouble", "unacked", "2026-11-27 22:00:00", NULL, NULL, NULL, 1,
      NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-27 22:00:01",
     {NULL},
     "{\"seq\":3,\"key\":\"" PUMP "\",\"class\":\"trouble\",\"level\":1,\"text\":\"泵故障\","
     "\"kind\":\"raise\",\"sensor\":\"C-1F-pump-01\",\"location\":\"C 1F\"}"},
    {"2026-11-27 22:10:00",
     {"ack", PUMP, "pump fault", "trouble", "acked", "2026-11-27 22:00:00", "2026-11-27 22:10:00",
      "张工", NULL, 1, "张工", NULL, NULL, 1, 0},
     NULL},
    {"2026-11-27 23:40:00",
     {"raise", HYDR, "sensor offline", "trouble", "unacked", "2026-11-27 23:40:00", NULL, NULL,
      NULL, 1, NULL, NULL, NULL, 600, 0},
     NULL},
    /* Nov 28, the day */
    {"2026-11-28 00:20:00",
     {"clear", HYDR, "sensor offline", "trouble", "rtn_unacked", "2026-11-27 23:40:00", NULL, NULL,
      "2026-11-28 00:20:00", 1, NULL, NULL, NULL, 12, 0},
     NULL},
    {"2026-11-28 07:30:00",
     {"clear", PUMP, "pump fault", "trouble", "normal", "2026-11-27 22:00:00",
      "2026-11-27 22:10:00", "张工", "2026-11-28 07:30:00", 1, NULL, NULL, NULL, 0, 0},
     NULL},
    {"2026-11-28 08:00:00",
     {"raise", EXIT, "exit locked during school hours", "supervisory", "unacked",
      "2026-11-28 08:00:00", NULL, NULL, NULL, 1, NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-28 08:15:00",
     {NULL}, /* its second level told the principal */
     "{\"seq\":20,\"key\":\"" EXIT "\",\"class\":\"supervisory\",\"level\":2,\"text\":\"x\","
     "\"kind\":\"escalate\"}"},
    {"2026-11-28 09:00:00",
     {"shelve", EXIT, "exit locked during school hours", "supervisory", "shelved",
      "2026-11-28 08:00:00", NULL, NULL, NULL, 2, "李老师", "更换门锁", "2026-11-28 10:00:00", 1,
      0},
     NULL},
    {"2026-11-28 10:00:00",
     {"unshelve", EXIT, "exit locked during school hours", "supervisory", "unacked",
      "2026-11-28 08:00:00", NULL, NULL, NULL, 2, NULL, "shelve expired", NULL, 1, 0},
     NULL},
    {"2026-11-28 10:42:05",
     {"raise", FIRE, "smoke detected", "alarm", "unacked", "2026-11-28 10:42:05", NULL, NULL, NULL,
      1, NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-28 10:44:35",
     {"ack", FIRE, "smoke detected", "alarm", "acked", "2026-11-28 10:42:05", "2026-11-28 10:44:35",
      "王师傅", NULL, 1, "王师傅", "误报，已清洁探头", NULL, 1, 0},
     NULL},
    {"2026-11-28 10:50:00",
     {"clear", FIRE, "smoke detected", "alarm", "acked", "2026-11-28 10:42:05",
      "2026-11-28 10:44:35", "王师傅", "2026-11-28 10:50:00", 1, NULL, NULL, NULL, 0, 0},
     NULL},
    {"2026-11-28 10:51:00",
     {"reset", FIRE, "smoke detected", "alarm", "normal", "2026-11-28 10:42:05",
      "2026-11-28 10:44:35", "王师傅", "2026-11-28 10:50:00", 1, "王师傅", NULL, NULL, 0, 0},
     NULL},
    {"2026-11-28 14:00:00",
     {"raise", TEST, "smoke detected", "alarm", "unacked", "2026-11-28 14:00:00", NULL, NULL, NULL,
      1, NULL, NULL, NULL, 1, 1},
     NULL},
    {"2026-11-28 14:00:30",
     {"ack", TEST, "smoke detected", "alarm", "acked", "2026-11-28 14:00:00", "2026-11-28 14:00:30",
      TESTER, NULL, 1, TESTER, NULL, NULL, 1, 1},
     NULL},
    {"2026-11-28 14:01:00",
     {"clear", TEST, "smoke detected", "alarm", "normal", "2026-11-28 14:00:00",
      "2026-11-28 14:00:30", TESTER, "2026-11-28 14:01:00", 1, NULL, NULL, NULL, 0, 1},
     NULL},
    {"2026-11-28 15:00:00", {NULL}, "{\"key\":"},
    /* a LoRa sensor silent since 22:45 (15 min when the alarm came): still offline */
    {"2026-11-28 23:00:00",
     {"raise", LORA, "sensor offline", "trouble", "unacked", "2026-11-28 23:00:00", NULL, NULL,
      NULL, 1, NULL, NULL, NULL, 900, 0},
     NULL},
    /* the last millisecond of the day (15:59:59.999Z) and the first of the next (16:00Z) */
    {"2026-11-28 23:59:59.999",
     {"raise", LAST, "smoke detected", "alarm", "unacked", "2026-11-28 23:59:59.999", NULL, NULL,
      NULL, 1, NULL, NULL, NULL, 1, 0},
     NULL},
    {"2026-11-29 00:00:00.000",
     {"raise", NEXT, "smoke detected", "alarm", "unacked", "2026-11-29 00:00:00", NULL, NULL, NULL,
      1, NULL, NULL, NULL, 1, 0},
     NULL},
    /* Nov 29 */
    {"2026-11-29 00:01:00",
     {"ack", LAST, "smoke detected", "alarm", "acked", "2026-11-28 23:59:59.999",
      "2026-11-29 00:01:00", "值班员", NULL, 1, "值班员", NULL, NULL, 1, 0},
     NULL},
    {"2026-11-29 00:03:00",
     {"clear", HELD, "fire door held open", "supervisory", "rtn_unacked", "2026-11-27 20:00:00",
      NULL, NULL, "2026-11-29 00:03:00", 1, NULL, NULL, NULL, 0, 0},
     NULL},
};
#define NHISTORY ((int)(sizeof(history) / sizeof(history[0])))

/*
 * The hazard register of the golden days, driven through the real register (hazards.c): its
 * entries are what hazard_log holds (gw_hazard_entry_to_json). Every action; the day's
 * boundaries (23:59:59.999 and 00:00:00.000 on both sides); a hazard updated the day before
 * (its overdue line names the new responsible) and one whose description changed the day
 * after (the day still shows the old one).
 */
enum { HZ_OPEN_, HZ_UPDATE_, HZ_RECT_, HZ_CLOSE_, HZ_REOPEN_, HZ_ALARM_, HZ_TICK_ };

struct hz_step {
    const char *at; /* Shanghai local */
    int what;
    const char *id; /* the hazard (for an open: the id it must get) */
    const char *by, *note;
    enum gw_hazard_category category;
    const char *building, *floor, *zone, *description, *responsible;
    const char *deadline; /* Shanghai local; NULL: the default / unchanged */
    const char *verifier;
};

#define HZ_OLD "HZ-20261127-001"   /* found the day before, overdue at the day's first ms */
#define HZ_AUTO "HZ-20261128-001"  /* opened by the exit alarm: every action on it */
#define HZ_EXT "HZ-20261128-002"   /* its description changes the day after */
#define HZ_CABLE "HZ-20261128-003" /* overdue at the day's last ms */
#define HZ_ROOF "HZ-20261129-001"  /* the next day's first ms */

static const struct hz_step hz_script[] = {
    {.at = "2026-11-27 16:00:00",
     .what = HZ_OPEN_,
     .id = HZ_OLD,
     .by = "李老师",
     .category = GW_HZ_EVACUATION_ROUTE,
     .building = "B",
     .floor = "1",
     .zone = "west exit",
     .description = "Exit chained shut",
     .responsible = "李工",
     .deadline = "2026-11-28 00:00:00"},
    {.at = "2026-11-27 23:59:59.999",
     .what = HZ_UPDATE_,
     .id = HZ_OLD,
     .by = "王师傅",
     .responsible = "张工",
     .note = "李工 on leave"},
    {.at = "2026-11-28 00:00:00.000", .what = HZ_TICK_},
    {.at = "2026-11-28 08:00:00",
     .what = HZ_ALARM_,
     .id = HZ_AUTO,
     .category = GW_HZ_EVACUATION_ROUTE,
     .building = "B",
     .floor = "1",
     .zone = "main exit",
     .description = "exit locked during school hours (B-1F-exit-main), value locked"},
    {.at = "2026-11-28 09:30:00",
     .what = HZ_OPEN_,
     .id = HZ_EXT,
     .by = "李老师",
     .category = GW_HZ_FIRE_EQUIPMENT,
     .building = "A",
     .floor = "2",
     .zone = "走廊东侧",
     .description = "灭火器压力不足",
     .responsible = "张工",
     .deadline = "2026-12-01 18:00:00"},
    {.at = "2026-11-28 09:40:00",
     .what = HZ_OPEN_,
     .id = HZ_CABLE,
     .by = "李老师",
     .category = GW_HZ_ELECTRICAL,
     .building = "C",
     .zone = "pump room",
     .description = "Cable insulation cracked",
     .responsible = "王电工"},
    {.at = "2026-11-28 09:45:00",
     .what = HZ_UPDATE_,
     .id = HZ_CABLE,
     .by = "李老师",
     .description = "Cable insulation cracked near pump 2",
     .deadline = "2026-11-28 12:00:00"},
    {.at = "2026-11-28 09:50:00",
     .what = HZ_UPDATE_,
     .id = HZ_AUTO,
     .by = "张工",
     .responsible = "张工"},
    {.at = "2026-11-28 10:00:00", .what = HZ_RECT_, .id = HZ_AUTO, .by = "张工"},
    {.at = "2026-11-28 11:00:00",
     .what = HZ_CLOSE_,
     .id = HZ_AUTO,
     .by = "张工",
     .note = "锁已拆除",
     .verifier = "赵老师"},
    {.at = "2026-11-28 15:00:00",
     .what = HZ_REOPEN_,
     .id = HZ_AUTO,
     .by = "赵老师",
     .note = "又被锁上"},
    {.at = "2026-11-28 23:59:59.999", .what = HZ_TICK_},
    {.at = "2026-11-29 00:00:00.000",
     .what = HZ_OPEN_,
     .id = HZ_ROOF,
     .by = "李老师",
     .category = GW_HZ_STRUCTURE,
     .building = "D",
     .floor = "3",
     .zone = "教室 301",
     .description = "天花板渗水",
     .responsible = "后勤王主任"},
    {.at = "2026-11-29 10:00:00",
     .what = HZ_UPDATE_,
     .id = HZ_EXT,
     .by = "李老师",
     .description = "灭火器压力不足（2 具）"},
};
#define NHZ_SCRIPT ((int)(sizeof(hz_script) / sizeof(hz_script[0])))

/* One hazard_log row. */
struct hz_row {
    int64_t at;
    char hazard[GW_HZ_ID_MAX];
    char *entry;
};
#define MAX_HZ_ROWS 32

static int hz_row_add(struct hz_row *rows, int n, const struct gw_hazard_entry *e)
{
    assert_true(n < MAX_HZ_ROWS);
    rows[n].at = e->at_ms;
    snprintf(rows[n].hazard, sizeof(rows[n].hazard), "%s", e->hazard.id);
    rows[n].entry = gw_hazard_entry_to_json(e);
    assert_non_null(rows[n].entry);
    return n + 1;
}

/* The script through a real register: the rows of hazard_log, in chain order. */
static int hazard_log_rows(struct hz_row *rows)
{
    static const char *const auto_open[] = {"exit locked during school hours"};
    struct gw_hazards_settings set = {.deadline_days = {3, 1, 7, 30, 14, 7},
                                      .auto_open = auto_open,
                                      .nauto_open = 1,
                                      .utc_offset_min = 480};
    struct gw_hazards *hz = gw_hazards_new(&set);
    assert_non_null(hz);
    int n = 0;
    char err[160];
    for (int i = 0; i < NHZ_SCRIPT; i++) {
        const struct hz_step *st = &hz_script[i];
        int64_t now = sh(st->at);
        struct gw_hazard_entry e[4];
        if (st->what == HZ_TICK_) {
            int got = gw_hazards_tick(hz, now, e, 4);
            assert_int_equal(got, 1); /* the script has one hazard falling due each time */
            n = hz_row_add(rows, n, &e[0]);
            continue;
        }
        if (st->what == HZ_ALARM_) {
            struct gw_hazard_alarm a = {.rule_name = "exit locked during school hours",
                                        .key = EXIT,
                                        .category = st->category,
                                        .building = st->building,
                                        .floor = st->floor ? st->floor : "",
                                        .zone = st->zone ? st->zone : "",
                                        .description = st->description};
            assert_int_equal(gw_hazards_on_alarm(hz, &a, now, &e[0], err, sizeof(err)), 1);
        } else {
            static const enum gw_hazard_cmd_type type[] = {GW_HZ_CMD_OPEN, GW_HZ_CMD_UPDATE,
                                                           GW_HZ_CMD_RECTIFYING, GW_HZ_CMD_CLOSE,
                                                           GW_HZ_CMD_REOPEN};
            struct gw_hazard_command c = {
                .type = type[st->what],
                .id = st->what == HZ_OPEN_ ? NULL : st->id,
                .by = st->by,
                .note = st->note,
                .category = st->what == HZ_OPEN_ ? gw_hazard_category_name(st->category) : NULL,
                .building = st->building,
                .floor = st->floor,
                .zone = st->zone,
                .description = st->description,
                .responsible = st->responsible,
                .deadline_ms = st->deadline ? sh(st->deadline) : 0,
                .verifier = st->verifier,
            };
            int rc = gw_hazards_command(hz, &c, now, &e[0], err, sizeof(err));
            if (rc != 1) {
                fail_msg("hazard step %d: %d %s", i, rc, err);
            }
        }
        assert_string_equal(e[0].hazard.id, st->id);
        n = hz_row_add(rows, n, &e[0]);
    }
    gw_hazards_free(hz);
    return n;
}

static void hz_rows_free(struct hz_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].entry);
    }
}

/* As daylog.c reads hazard_log: the rows from the day's start on mark the day's hazards, then
 * every row from the first is replayed. Rows after as_of are not written yet. */
static struct gw_daily_hazards *day_hazards(const struct hz_row *rows, int n, int64_t start,
                                            int64_t end, int64_t as_of)
{
    struct gw_daily_hazards *d = gw_daily_hazards_new(start, end);
    assert_non_null(d);
    for (int i = 0; i < n; i++) {
        if (rows[i].at >= start && (!as_of || rows[i].at <= as_of)) {
            assert_int_equal(gw_daily_hazards_mark(d, rows[i].hazard, rows[i].at), 0);
        }
    }
    for (int i = 0; i < n; i++) {
        if (!as_of || rows[i].at <= as_of) {
            assert_int_equal(gw_daily_hazards_add(d, rows[i].hazard, rows[i].entry), 0);
        }
    }
    return d;
}

static bool live_now(void *ctx, const char *key)
{
    const char *const *live = ctx;
    for (; *live; live++) {
        if (strcmp(*live, key) == 0) {
            return true;
        }
    }
    return false;
}

static const char *const live_keys[] = {BEFORE, EXIT, LORA, NEXT, NULL};

/* The day through the same calls as the gateway's daylog.c: rows in seq order, then build. */
static void build_day(const char *date, const char *language, int64_t as_of,
                      struct gw_daily_log *log)
{
    int64_t start, end;
    assert_int_equal(gw_daily_log_day_bounds(date, &start, &end), 0);
    struct gw_daily_history *h =
        gw_daily_history_new(start, end, live_now, (void *)(uintptr_t)live_keys);
    assert_non_null(h);
    char *payload[NHISTORY];
    int n = 0;
    for (int i = 0; i < NHISTORY; i++) {
        payload[i] = history[i].r.key ? record(&history[i].r) : strdup(history[i].raw);
        n++;
        int64_t ts = sh(history[i].at);
        if (as_of && ts > as_of) {
            break; /* not recorded yet */
        }
        if (gw_daily_history_enough(h, ts)) {
            break;
        }
        assert_int_equal(gw_daily_history_add(h, ts, payload[i]), 0);
    }
    struct gw_daily_input in = {
        .school = "haidian-no1",
        .school_name = "海淀一小",
        .language = language,
        .date = date,
        .start_ms = start,
        .end_ms = end,
        .offline_rules = offline_rules,
        .noffline_rules = 1,
        .as_of_ms = as_of,
    };
    struct hz_row rows[MAX_HZ_ROWS];
    int nrows = hazard_log_rows(rows);
    struct gw_daily_hazards *hz = day_hazards(rows, nrows, start, end, as_of);
    assert_int_equal(gw_daily_hazards_skipped(hz), 0);
    gw_daily_hazards_input(hz, &in);
    assert_int_equal(gw_daily_history_input(h, &in), 0);
    char err[128] = "";
    assert_int_equal(gw_daily_log_build(&in, log, err, sizeof(err)), 0);
    gw_daily_history_free(h);
    gw_daily_hazards_free(hz);
    hz_rows_free(rows, nrows);
    for (int i = 0; i < n; i++) {
        free(payload[i]);
    }
}

static void data_path(const char *name, char *out, size_t size)
{
    const char *dir = getenv("GW_TEST_DATA");
    if (dir) {
        snprintf(out, size, "%s/daily_log/%s", dir, name);
        return;
    }
    /* Run by hand: the data next to this source file. */
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    snprintf(out, size, "%.*s/data/daily_log/%s", slash ? (int)(slash - src) : 1, slash ? src : ".",
             name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n + 4096 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void spill(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Byte for byte; on a mismatch: the first differing line of each, and <golden>.actual. */
static void golden(const char *name, const char *got)
{
    char path[1024], actual[1100];
    data_path(name, path, sizeof(path));
    snprintf(actual, sizeof(actual), "%s.actual", path);
    const char *update = getenv("GW_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        spill(path, got);
        print_message("golden file rewritten: %s\n", path);
        return;
    }
    size_t len = 0;
    char *want = slurp(path, &len);
    if (want && len == strlen(got) && memcmp(want, got, len) == 0) {
        free(want);
        remove(actual);
        return;
    }
    spill(actual, got);
    if (!want) {
        fail_msg("golden file %s is missing; what the code writes is in %s "
                 "(GW_UPDATE_GOLDEN=1 creates it)",
                 path, actual);
    }
    int line = 1;
    size_t i = 0, bol = 0;
    while (i < len && got[i] && want[i] == got[i]) {
        if (want[i] == '\n') {
            line++;
            bol = i + 1;
        }
        i++;
    }
    const char *w = want + bol, *g = got + bol;
    int wl = (int)strcspn(w, "\n"), gl = (int)strcspn(g, "\n");
    print_error("golden mismatch in %s at line %d (byte %zu):\n"
                "  expected: %.*s\n"
                "  actual:   %.*s\n"
                "  diff -u %s %s\n"
                "  (if the change is intended: GW_UPDATE_GOLDEN=1 ./test_daily_log)\n",
                name, line, i, wl, w, gl, g, path, actual);
    free(want);
    fail();
}

/* A JSON text as a file (with the final newline editors add). */
static void golden_json(const char *name, const char *json)
{
    size_t n = strlen(json);
    char *text = malloc(n + 2);
    assert_non_null(text);
    memcpy(text, json, n);
    memcpy(text + n, "\n", 2);
    golden(name, text);
    free(text);
}

static void test_golden_day(void **state)
{
    (void)state;
    struct gw_daily_log zh, en;
    build_day("2026-11-28", "zh-CN", 0, &zh);
    build_day("2026-11-28", "en", 0, &en);
    golden("2026-11-28.zh-CN.md", zh.markdown);
    golden("2026-11-28.en.md", en.markdown);
    golden("2026-11-28.csv", zh.csv);
    golden_json("2026-11-28.summary.json", zh.summary);
    /* the CSV and the summary do not depend on the language */
    assert_string_equal(en.csv, zh.csv);
    assert_string_equal(en.summary, zh.summary);
    gw_daily_log_free(&zh);
    gw_daily_log_free(&en);
}

/* The next day, asked for at 00:30 (not over): what was open at midnight, the 16:00Z raise. */
static void test_golden_next_day_so_far(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-29", "en", sh("2026-11-29 00:30:00"), &log);
    golden("2026-11-29.partial.en.md", log.markdown);
    golden_json("2026-11-29.partial.summary.json", log.summary);
    gw_daily_log_free(&log);
}

/* What the golden day must show, said independently of the files (a wrong golden file
 * accepted by GW_UPDATE_GOLDEN=1 still fails here). */
static void test_golden_day_facts(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-28", "en", 0, &log);
    const char *md = log.markdown;
    /* carried over: open all day (live), and open at midnight though cleared after the day */
    has_line(md, "- 2026-11-25 08:00:00 raised **A-1F-hydrant-01/hydrant-pressure-low** "
                 "(hydrant pressure low), acknowledged by 张工 after 30 min, not cleared");
    has_line(md, "- 2026-11-27 20:00:00 raised **B-2F-firedoor-03/fire-door-held-open** "
                 "(fire door held open), not acknowledged, not cleared");
    /* raised and over before the day; ended without a record: neither is in it */
    assert_null(strstr(md, "2026-11-26"));
    assert_null(strstr(md, "OLD-1F-door-09"));
    /* the boundary: 15:59:59.999Z is the day's last millisecond, 16:00:00.000Z the next's */
    has_line(md, "- 23:59:59 raised **A-1F-smoke-101/smoke-detected** (smoke detected), "
                 "not acknowledged, not cleared");
    assert_null(strstr(md, "A-1F-smoke-102"));
    has_line(md, "- LORA-temp-7 offline since 22:45:00, still offline, 1 h 15 min this day");
    has_line(md, "- opened 3, closed 1, overdue 2");
    has_line(md, "### Register entries (10)");
    assert_null(strstr(md, "not over"));
    assert_string_equal(
        log.summary,
        "{\"date\":\"2026-11-28\",\"school\":\"haidian-no1\",\"alarms\":{\"alarm\":2,"
        "\"supervisory\":1,\"trouble\":1},\"acked\":1,\"unacked\":3,\"mean_ack_s\":150,"
        "\"worst_ack_s\":150,\"outages\":2,\"outage_minutes\":95,\"hazards\":{\"opened\":3,"
        "\"closed\":1,\"overdue\":2},\"commands\":11}");
    gw_daily_log_free(&log);

    build_day("2026-11-29", "zh-CN", sh("2026-11-29 00:30:00"), &log);
    has_line(log.markdown, "> 本日尚未结束：本日志只记录到 00:30:00。");
    has_line(log.markdown, "- 00:00:00 报警 **A-1F-smoke-102/smoke-detected**（smoke detected），"
                           "未确认，未恢复");
    has_line(log.markdown, "- 2026-11-28 23:59:59 报警 **A-1F-smoke-101/smoke-detected**"
                           "（smoke detected），1 分后由 值班员 确认，未恢复");
    assert_non_null(strstr(log.summary, "\"alarms\":{\"alarm\":1,\"supervisory\":0,"));
    /* a day not over: an outage still going counts up to now, not to midnight */
    has_line(log.markdown, "- LORA-temp-7 离线：2026-11-28 22:45:00 起，仍未恢复，本日 30 分");
    assert_non_null(strstr(log.summary, "\"outages\":1,\"outage_minutes\":30,"));
    gw_daily_log_free(&log);
}

/* ---- the history fold on its own ---- */

static void test_history_fold(void **state)
{
    (void)state;
    int64_t start = sh("2026-11-28 00:00:00"), end = sh("2026-11-29 00:00:00");
    char *raise =
        record(&(struct rec){"raise", "S-1/r", "r", "trouble", "unacked", "2026-11-27 10:00:00",
                             NULL, NULL, NULL, 1, NULL, NULL, NULL, 1, 0});
    char *normal =
        record(&(struct rec){"reset", "S-1/r", "r", "trouble", "normal", "2026-11-27 10:00:00",
                             NULL, NULL, "2026-11-27 11:00:00", 1, "x", NULL, NULL, 0, 0});
    const char *note = "{\"key\":\"S-1/r\",\"class\":\"trouble\",\"kind\":\"raise\"}";

    /* raised, then back to normal: nothing carried; a notification changes nothing */
    struct gw_daily_history *h = gw_daily_history_new(start, end, NULL, NULL);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 10:00:00"), raise), 0);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 11:00:00"), normal), 0);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 11:00:01"), note), 0);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 11:00:02"), "not json"), 0);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 11:00:03"), NULL), 0);
    struct gw_daily_input in = {0};
    assert_int_equal(gw_daily_history_input(h, &in), 0);
    assert_int_equal(in.nopen_before, 0);
    assert_int_equal(in.nevents, 0);
    /* nothing unresolved: a scan may stop an hour after the day */
    assert_false(gw_daily_history_enough(h, end));
    assert_false(gw_daily_history_enough(h, end + HOUR - 1));
    assert_true(gw_daily_history_enough(h, end + HOUR));
    gw_daily_history_free(h);

    /* raised and silent: not live and no later row -> ended without a record, left out;
     * the scan must go on to the end to know */
    h = gw_daily_history_new(start, end, NULL, NULL);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 10:00:00"), raise), 0);
    assert_false(gw_daily_history_enough(h, end + 10 * HOUR));
    assert_int_equal(gw_daily_history_input(h, &in), 0);
    assert_int_equal(in.nopen_before, 0);
    /* ... until a later row of its key (after the day) says it went on */
    assert_int_equal(gw_daily_history_add(h, end + 2 * HOUR, normal), 0);
    assert_true(gw_daily_history_enough(h, end + 10 * HOUR));
    assert_int_equal(gw_daily_history_input(h, &in), 0);
    assert_int_equal(in.nopen_before, 1);
    assert_string_equal(in.open_before[0], raise);
    assert_int_equal(in.nevents, 0); /* after the day: not an event of it */
    gw_daily_history_free(h);

    /* live now: carried at once, and the day's rows are its events */
    static const char *const live[] = {"S-1/r", NULL};
    h = gw_daily_history_new(start, end, live_now, (void *)(uintptr_t)live);
    assert_int_equal(gw_daily_history_add(h, sh("2026-11-27 10:00:00"), raise), 0);
    assert_true(gw_daily_history_enough(h, end + HOUR));
    assert_int_equal(gw_daily_history_add(h, start, note), 0);
    assert_int_equal(gw_daily_history_add(h, end - 1, raise), 0);
    assert_int_equal(gw_daily_history_input(h, &in), 0);
    assert_int_equal(in.nopen_before, 1);
    assert_int_equal(in.nevents, 2);
    assert_int_equal(in.events[0].ts_ms, start);
    assert_int_equal(in.events[1].ts_ms, end - 1);
    gw_daily_history_free(h);
    gw_daily_history_free(NULL);

    /* too many rows in one day */
    h = gw_daily_history_new(start, end, NULL, NULL);
    for (int i = 0; i < GW_DAILY_MAX_EVENTS; i++) {
        assert_int_equal(gw_daily_history_add(h, start + i, "{}"), 0);
    }
    assert_int_equal(gw_daily_history_add(h, start, "{}"), -E2BIG);
    gw_daily_history_free(h);
    free(raise);
    free(normal);
}

/* ---- hazard register entries ---- */

/* The lines between "### Register entries" / "### 台账记录" and the next section. */
static void section_lines(const char *md, const char *from, const char *to, const char **want,
                          int n)
{
    const char *p = strstr(md, from), *end = strstr(md, to);
    assert_non_null(p);
    assert_non_null(end);
    p = strchr(p, '\n') + 1;
    int i = 0;
    while (p < end) {
        size_t len = strcspn(p, "\n");
        if (len > 0) {
            if (i >= n) {
                fail_msg("unexpected line %d: %.*s", i, (int)len, p);
            }
            if (strlen(want[i]) != len || memcmp(want[i], p, len) != 0) {
                fail_msg("line %d:\n  expected: %s\n  actual:   %.*s", i, want[i], (int)len, p);
            }
            i++;
        }
        p += len + 1;
    }
    assert_int_equal(i, n);
}

/* Every action in English, in time order, each with the hazard as it was at that entry. */
static void test_hazard_entries_en(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-28", "en", 0, &log);
    const char *want[] = {
        /* overdue at the day's first millisecond; responsible changed at 23:59:59.999 before */
        "- 00:00:00 the gateway reported overdue **HZ-20261127-001** (evacuation route, B / 1 / "
        "west exit): Exit chained shut; deadline 2026-11-28 00:00 passed, responsible 张工",
        "- 08:00:00 the gateway opened **HZ-20261128-001** (evacuation route, B / 1 / main "
        "exit): exit locked during school hours (B-1F-exit-main), value locked; from alarm "
        "B-1F-exit-main/exit-locked-during-school-hours, responsible not named yet, deadline "
        "2026-11-29 08:00",
        /* its description changes the next day: the day shows it as it was */
        "- 09:30:00 李老师 opened **HZ-20261128-002** (fire equipment, A / 2 / 走廊东侧): "
        "灭火器压力不足; responsible 张工, deadline 2026-12-01 18:00",
        "- 09:40:00 李老师 opened **HZ-20261128-003** (electrical, C / pump room): Cable "
        "insulation cracked; responsible 王电工, deadline 2026-12-05 09:40",
        "- 09:45:00 李老师 updated **HZ-20261128-003** (electrical, C / pump room): Cable "
        "insulation cracked near pump 2; deadline 2026-11-28 12:00 (was 2026-12-05 09:40), "
        "description changed (was: Cable insulation cracked)",
        "- 09:50:00 张工 updated **HZ-20261128-001** (evacuation route, B / 1 / main exit): exit "
        "locked during school hours (B-1F-exit-main), value locked; responsible 张工 (none named "
        "before)",
        "- 10:00:00 张工 started fixing **HZ-20261128-001** (evacuation route, B / 1 / main "
        "exit): exit locked during school hours (B-1F-exit-main), value locked",
        "- 11:00:00 张工 closed **HZ-20261128-001** (evacuation route, B / 1 / main exit): exit "
        "locked during school hours (B-1F-exit-main), value locked; verified by 赵老师, note: "
        "锁已拆除",
        "- 15:00:00 赵老师 reopened **HZ-20261128-001** (evacuation route, B / 1 / main exit): "
        "exit locked during school hours (B-1F-exit-main), value locked; responsible 张工, "
        "deadline 2026-11-29 15:00, note: 又被锁上",
        /* the day's last millisecond */
        "- 23:59:59 the gateway reported overdue **HZ-20261128-003** (electrical, C / pump "
        "room): Cable insulation cracked near pump 2; deadline 2026-11-28 12:00 passed, "
        "responsible 王电工",
    };
    section_lines(log.markdown, "### Register entries (10)", "## Commands", want, 10);
    has_line(log.markdown, "- opened 3, closed 1, overdue 2");
    /* neither the day before's last millisecond nor the next day's first */
    assert_null(strstr(log.markdown, "李工 on leave"));
    assert_null(strstr(log.markdown, "HZ-20261129-001"));
    assert_null(strstr(log.markdown, "2 具"));

    /* people's entries are commands, merged by time; the gateway's are not */
    const char *cmds[] = {
        "- 09:00:00 李老师 shelved B-1F-exit-main/exit-locked-during-school-hours until "
        "10:00:00, note: 更换门锁",
        "- 09:30:00 李老师 opened hazard HZ-20261128-002",
        "- 09:40:00 李老师 opened hazard HZ-20261128-003",
        "- 09:45:00 李老师 updated hazard HZ-20261128-003",
        "- 09:50:00 张工 updated hazard HZ-20261128-001",
        "- 10:00:00 张工 started fixing hazard HZ-20261128-001",
        "- 10:44:35 王师傅 acknowledged A-3F-smoke-301/smoke-detected, note: 误报，已清洁探头",
        "- 10:51:00 王师傅 reset A-3F-smoke-301/smoke-detected",
        "- 11:00:00 张工 closed hazard HZ-20261128-001",
        "- 14:00:30 王师傅, \"老王\" acknowledged A-2F-smoke-201/smoke-detected",
        "- 15:00:00 赵老师 reopened hazard HZ-20261128-001",
    };
    section_lines(log.markdown, "## Commands", "## Summary", cmds, 11);
    has_line(log.markdown, "| Hazards opened/closed/overdue | 3/1/2 |");
    has_line(log.markdown, "| Commands | 11 |");
    assert_non_null(strstr(log.summary, "\"hazards\":{\"opened\":3,\"closed\":1,\"overdue\":2},"
                                        "\"commands\":11}"));
    gw_daily_log_free(&log);
}

static void test_hazard_entries_zh(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-28", "zh-CN", 0, &log);
    const char *want[] = {
        "- 00:00:00 系统 标记逾期 **HZ-20261127-001**（疏散通道，B / 1 / west exit）：Exit "
        "chained shut；整改期限 2026-11-28 00:00 已过，责任人 张工",
        "- 08:00:00 系统 自动登记隐患 **HZ-20261128-001**（疏散通道，B / 1 / main exit）：exit "
        "locked during school hours (B-1F-exit-main), value locked；来源报警 "
        "B-1F-exit-main/exit-locked-during-school-hours，责任人 尚未指定，整改期限 2026-11-29 "
        "08:00",
        "- 09:30:00 李老师 登记隐患 **HZ-20261128-002**（消防设施，A / 2 / 走廊东侧）："
        "灭火器压力不足；责任人 张工，整改期限 2026-12-01 18:00",
        "- 09:40:00 李老师 登记隐患 **HZ-20261128-003**（电气，C / pump room）：Cable insulation "
        "cracked；责任人 王电工，整改期限 2026-12-05 09:40",
        "- 09:45:00 李老师 修改隐患 **HZ-20261128-003**（电气，C / pump room）：Cable insulation "
        "cracked near pump 2；整改期限 2026-11-28 12:00（原 2026-12-05 09:40），描述已修改（原："
        "Cable insulation cracked）",
        "- 09:50:00 张工 修改隐患 **HZ-20261128-001**（疏散通道，B / 1 / main exit）：exit locked "
        "during school hours (B-1F-exit-main), value locked；责任人 张工（原 尚未指定）",
        "- 10:00:00 张工 开始整改 **HZ-20261128-001**（疏散通道，B / 1 / main exit）：exit locked "
        "during school hours (B-1F-exit-main), value locked",
        "- 11:00:00 张工 销号 **HZ-20261128-001**（疏散通道，B / 1 / main exit）：exit locked "
        "during school hours (B-1F-exit-main), value locked；验收人 赵老师，备注：锁已拆除",
        "- 15:00:00 赵老师 重新打开 **HZ-20261128-001**（疏散通道，B / 1 / main exit）：exit "
        "locked during school hours (B-1F-exit-main), value locked；责任人 张工，整改期限 "
        "2026-11-29 15:00，备注：又被锁上",
        "- 23:59:59 系统 标记逾期 **HZ-20261128-003**（电气，C / pump room）：Cable insulation "
        "cracked near pump 2；整改期限 2026-11-28 12:00 已过，责任人 王电工",
    };
    section_lines(log.markdown, "### 台账记录（10）", "## 操作记录", want, 10);
    has_line(log.markdown, "- 新增 3 项，整改关闭 1 项，逾期 2 项");
    has_line(log.markdown, "- 09:30:00 李老师 登记隐患 HZ-20261128-002");
    has_line(log.markdown, "- 09:45:00 李老师 修改隐患 HZ-20261128-003");
    has_line(log.markdown, "- 10:00:00 张工 开始整改 HZ-20261128-001");
    has_line(log.markdown, "- 11:00:00 张工 销号 HZ-20261128-001");
    has_line(log.markdown, "- 15:00:00 赵老师 重新打开 HZ-20261128-001");
    assert_null(strstr(log.markdown, "系统 标记逾期 HZ")); /* not a command */
    has_line(log.markdown, "| 隐患 新增/关闭/逾期 | 3/1/2 |");
    has_line(log.markdown, "| 操作命令 | 11 |");
    gw_daily_log_free(&log);
}

/* The day after: the later description change, said with what it was; the 28th's own
 * entries are not in it; the next day's first millisecond is. */
static void test_hazard_later_change(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-29", "en", 0, &log);
    const char *want[] = {
        "- 00:00:00 李老师 opened **HZ-20261129-001** (structure, D / 3 / 教室 301): 天花板渗水; "
        "responsible 后勤王主任, deadline 2026-12-29 00:00",
        "- 10:00:00 李老师 updated **HZ-20261128-002** (fire equipment, A / 2 / 走廊东侧): "
        "灭火器压力不足（2 具）; description changed (was: 灭火器压力不足)",
    };
    section_lines(log.markdown, "### Register entries (2)", "## Commands", want, 2);
    has_line(log.markdown, "- opened 1, closed 0, overdue 0");
    gw_daily_log_free(&log);
}

/* The CSV's hazard rows, read back: after the alarms, in time order, filterable by "record". */
static void test_hazard_csv(void **state)
{
    (void)state;
    struct gw_daily_log log;
    build_day("2026-11-28", "zh-CN", 0, &log);
    static struct csv c;
    parse_csv(log.csv + 3, &c);
    assert_int_equal(c.nrows, 1 + 9 + 10);
    for (int r = 1; r <= 9; r++) {
        assert_int_equal(c.nfields[r], NCOLUMNS);
        assert_string_equal(c.field[r][12], "alarm");
        assert_string_equal(c.field[r][13], "");
    }
    const char *d = "2026-11-28";
    hazard_row_is(&c, 10, d, HZ_OLD,
                  (const char *const[]){"hazard", "2026-11-28 00:00:00", "overdue", "",
                                        "evacuation_route", "B", "1", "west exit",
                                        "Exit chained shut", "张工", "2026-11-28 00:00:00", "open",
                                        "", "", "true", ""});
    hazard_row_is(&c, 11, d, HZ_AUTO,
                  (const char *const[]){
                      "hazard", "2026-11-28 08:00:00", "open", "", "evacuation_route", "B", "1",
                      "main exit", "exit locked during school hours (B-1F-exit-main), value locked",
                      "", "2026-11-29 08:00:00", "open", "", EXIT, "false", ""});
    hazard_row_is(&c, 12, d, HZ_EXT,
                  (const char *const[]){"hazard", "2026-11-28 09:30:00", "open", "李老师",
                                        "fire_equipment", "A", "2", "走廊东侧", "灭火器压力不足",
                                        "张工", "2026-12-01 18:00:00", "open", "", "", "false",
                                        ""});
    hazard_row_is(&c, 14, d, HZ_CABLE,
                  (const char *const[]){"hazard", "2026-11-28 09:45:00", "update", "李老师",
                                        "electrical", "C", "", "pump room",
                                        "Cable insulation cracked near pump 2", "王电工",
                                        "2026-11-28 12:00:00", "open", "", "", "false", ""});
    hazard_row_is(&c, 17, d, HZ_AUTO,
                  (const char *const[]){
                      "hazard", "2026-11-28 11:00:00", "close", "张工", "evacuation_route", "B",
                      "1", "main exit",
                      "exit locked during school hours (B-1F-exit-main), value locked", "张工",
                      "2026-11-29 08:00:00", "closed", "赵老师", EXIT, "false", "锁已拆除"});
    hazard_row_is(&c, 18, d, HZ_AUTO,
                  (const char *const[]){
                      "hazard", "2026-11-28 15:00:00", "reopen", "赵老师", "evacuation_route", "B",
                      "1", "main exit",
                      "exit locked during school hours (B-1F-exit-main), value locked", "张工",
                      "2026-11-29 15:00:00", "open", "", EXIT, "false", "又被锁上"});
    assert_string_equal(c.field[19][14], "overdue");
    assert_string_equal(c.field[19][13], "2026-11-28 23:59:59");
    gw_daily_log_free(&log);
}

/* A made-up entry's JSON (the daily log does not check the chain: hazards.c does). */
static char *entry_json(uint64_t seq, const char *id, const char *at, const char *action,
                        unsigned fields, const char *by, const char *description)
{
    struct gw_hazard_entry e = {.seq = seq, .at_ms = sh(at), .action = action, .fields = fields};
    snprintf(e.hazard.id, sizeof(e.hazard.id), "%s", id);
    snprintf(e.by, sizeof(e.by), "%s", by);
    snprintf(e.hazard.building, sizeof(e.hazard.building), "A");
    snprintf(e.hazard.description, sizeof(e.hazard.description), "%s", description);
    snprintf(e.hazard.responsible, sizeof(e.hazard.responsible), "张工");
    e.hazard.deadline_ms = sh("2026-12-01 00:00:00");
    e.hazard.status = strcmp(action, "close") == 0 ? GW_HZ_CLOSED : GW_HZ_OPEN;
    snprintf(e.hazard.verified_by, sizeof(e.hazard.verified_by), "%s",
             strcmp(action, "close") == 0 ? "赵老师" : "");
    memset(e.prev_hash, '0', 64);
    memset(e.hash, 'a', 64);
    char *s = gw_hazard_entry_to_json(&e);
    assert_non_null(s);
    return s;
}

/* gw_daily_hazards on its own: what is wanted, what is skipped, a hazard with no known
 * start, the cap. */
static void test_daily_hazards_fold(void **state)
{
    (void)state;
    int64_t start = sh("2026-11-28 00:00:00"), end = sh("2026-11-29 00:00:00");
    struct gw_daily_hazards *d = gw_daily_hazards_new(start, end);
    assert_non_null(d);
    /* only rows within the day mark their hazard; odd ids are not ids */
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-A", start - 1), 0);
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-A", end), 0);
    assert_int_equal(gw_daily_hazards_mark(d, NULL, start), 0);
    assert_int_equal(gw_daily_hazards_mark(d, "", start), 0);
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-0123456789012345678901234", start), 0);
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-B", start), 0);
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-B", start + 5), 0); /* twice: one hazard */
    char *a_open = entry_json(1, "HZ-A", "2026-11-28 09:00:00", "open", GW_HZF_ALL, "x", "a");
    char *b_close = entry_json(2, "HZ-B", "2026-11-28 10:00:00", "close",
                               GW_HZF_STATUS | GW_HZF_VERIFIED_BY, "张工", "");
    /* not wanted: ignored unparsed, even garbage */
    assert_int_equal(gw_daily_hazards_add(d, "HZ-A", a_open), 0);
    assert_int_equal(gw_daily_hazards_add(d, "HZ-A", "garbage"), 0);
    assert_int_equal(gw_daily_hazards_add(d, NULL, "garbage"), 0);
    /* wanted but not an entry, or another hazard's entry under its id: skipped */
    assert_int_equal(gw_daily_hazards_add(d, "HZ-B", "garbage"), 0);
    assert_int_equal(gw_daily_hazards_add(d, "HZ-B", "{\"seq\":1}"), 0);
    assert_int_equal(gw_daily_hazards_add(d, "HZ-B", a_open), 0);
    assert_int_equal(gw_daily_hazards_skipped(d), 3);
    /* closed, but its opening was never seen: listed without what is not known */
    assert_int_equal(gw_daily_hazards_add(d, "HZ-B", b_close), 0);
    struct gw_daily_input in = {
        .school = "S", .language = "en", .date = "2026-11-28", .start_ms = start, .end_ms = end};
    gw_daily_hazards_input(d, &in);
    assert_int_equal(in.nhazards, 1);
    assert_false(in.hazards[0].known);
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&in, &log, NULL, 0), 0);
    has_line(log.markdown, "- 10:00:00 张工 closed **HZ-B**; verified by 赵老师");
    has_line(log.markdown, "- opened 0, closed 1, overdue 0");
    assert_non_null(strstr(log.csv, "\r\n2026-11-28,HZ-B,,,,,,,,,,,hazard,2026-11-28 10:00:00,"
                                    "close,张工,,,,,,,,,赵老师,,,\r\n"));
    gw_daily_log_free(&log);
    gw_daily_hazards_free(d);
    gw_daily_hazards_free(NULL);
    free(a_open);
    free(b_close);

    /* more entries in one day than a log takes */
    d = gw_daily_hazards_new(start, end);
    assert_int_equal(gw_daily_hazards_mark(d, "HZ-C", start), 0);
    char *open = entry_json(1, "HZ-C", "2026-11-28 08:00:00", "open", GW_HZF_ALL, "x", "c");
    char *upd =
        entry_json(2, "HZ-C", "2026-11-28 08:00:01", "update", GW_HZF_DESCRIPTION, "x", "c2");
    assert_int_equal(gw_daily_hazards_add(d, "HZ-C", open), 0);
    for (int i = 1; i < GW_DAILY_MAX_HAZARD_ENTRIES; i++) {
        assert_int_equal(gw_daily_hazards_add(d, "HZ-C", upd), 0);
    }
    assert_int_equal(gw_daily_hazards_add(d, "HZ-C", upd), -E2BIG);
    gw_daily_hazards_free(d);
    free(open);
    free(upd);
}

/* Entries given directly: another day's are ignored; the same time keeps chain order; bad
 * lists are refused; Markdown-active text is escaped. */
static void test_hazard_input(void **state)
{
    (void)state;
    int64_t start = sh("2026-11-28 00:00:00"), end = sh("2026-11-29 00:00:00");
    static struct gw_daily_hazard items[3];
    memset(items, 0, sizeof(items));
    const char *at[] = {"2026-11-28 12:00:00", "2026-11-27 23:59:59.999", "2026-11-28 12:00:00"};
    const uint64_t seq[] = {9, 3, 8};
    for (int i = 0; i < 3; i++) {
        struct gw_hazard_entry *e = &items[i].entry;
        e->seq = seq[i];
        e->at_ms = sh(at[i]);
        e->action = "rectifying";
        snprintf(e->by, sizeof(e->by), "w*%d", i);
        snprintf(e->hazard.id, sizeof(e->hazard.id), "HZ-%d", i);
        snprintf(e->hazard.building, sizeof(e->hazard.building), "A|B");
        snprintf(e->hazard.description, sizeof(e->hazard.description), "line1\nline_2");
        e->hazard.category = GW_HZ_OTHER;
        items[i].known = true;
    }
    struct gw_daily_input in = {.school = "S",
                                .language = "en",
                                .date = "2026-11-28",
                                .start_ms = start,
                                .end_ms = end,
                                .hazards = items,
                                .nhazards = 3};
    struct gw_daily_log log;
    assert_int_equal(gw_daily_log_build(&in, &log, NULL, 0), 0);
    const char *want[] = {
        "- 12:00:00 w\\*2 started fixing **HZ-2** (other, A\\|B): line1 line\\_2",
        "- 12:00:00 w\\*0 started fixing **HZ-0** (other, A\\|B): line1 line\\_2",
    };
    section_lines(log.markdown, "### Register entries (2)", "## Commands", want, 2);
    assert_non_null(strstr(log.summary, "\"commands\":2}"));
    gw_daily_log_free(&log);

    char err[128];
    in.hazards = NULL;
    assert_int_equal(gw_daily_log_build(&in, &log, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "a list has a count but no items");
    in.hazards = items;
    in.nhazards = -1;
    assert_int_equal(gw_daily_log_build(&in, &log, err, sizeof(err)), -EINVAL);
    in.nhazards = 3;
    items[1].entry.action = NULL;
    assert_int_equal(gw_daily_log_build(&in, &log, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "a hazard entry without an action");
    assert_null(log.markdown);
}

/* Which day is due when: the one before, from its next 00:05 on. */
/* What the nightly writer does next, whatever the clock did. */
static void test_next_due(void **state)
{
    (void)state;
    char day[11], skipped[11];
    /* at start: the newest due day only (yesterday after 00:05, the day before until then) */
    assert_int_equal(gw_daily_log_next_due("", sh("2026-11-29 10:00:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-11-28");
    assert_string_equal(skipped, "");
    assert_int_equal(gw_daily_log_next_due(NULL, sh("2026-11-29 00:04:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-11-27");
    /* the normal night: the 28th written, nothing until the 30th 00:05 */
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-11-29 00:05:00"), 7, day, skipped), 0);
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-11-30 00:04:59.999"), 7, day, skipped), 0);
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-11-30 00:05:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-11-29");
    /* stepped back a day after writing: the 28th is not written again, then on as usual */
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-11-28 00:06:00"), 7, day, skipped), 0);
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-11-29 00:05:00"), 7, day, skipped), 0);
    /* stepped forward three days: every day passed, the oldest first */
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-12-02 09:00:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-11-29");
    assert_string_equal(skipped, "");
    assert_int_equal(
        gw_daily_log_next_due("2026-11-30", sh("2026-12-02 09:00:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-12-01");
    assert_int_equal(
        gw_daily_log_next_due("2026-12-01", sh("2026-12-02 09:00:00"), 7, day, skipped), 0);
    /* forward by a month: the last week only, the first day left out named */
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", sh("2026-12-30 09:00:00"), 7, day, skipped), 1);
    assert_string_equal(day, "2026-12-23");
    assert_string_equal(skipped, "2026-11-29");
    /* a clock not set yet (1970 on a Pi without RTC), and a broken done */
    assert_int_equal(gw_daily_log_next_due("", 86400 * SEC, 7, day, skipped), -EAGAIN);
    assert_int_equal(
        gw_daily_log_next_due("2026-11-28", GW_DAILY_CLOCK_SET_MS - 1, 7, day, skipped), -EAGAIN);
    assert_int_equal(gw_daily_log_next_due("2026-1-28", sh("2026-11-29 10:00:00"), 7, day, skipped),
                     -EINVAL);
}

static void test_due_day(void **state)
{
    (void)state;
    char date[11];
    int64_t a, b;
    assert_int_equal(gw_daily_log_due_day(sh("2026-11-29 00:05:00"), date, &a, &b), 0);
    assert_string_equal(date, "2026-11-28");
    assert_int_equal(a, sh("2026-11-28 00:00:00"));
    assert_int_equal(b, sh("2026-11-29 00:00:00"));
    assert_int_equal(gw_daily_log_due_day(sh("2026-11-29 00:04:59.999"), date, &a, &b), 0);
    assert_string_equal(date, "2026-11-27");
    assert_int_equal(b, sh("2026-11-28 00:00:00"));
    assert_int_equal(gw_daily_log_due_day(sh("2026-11-29 23:59:59"), date, &a, &b), 0);
    assert_string_equal(date, "2026-11-28");
    assert_int_equal(gw_daily_log_due_day(sh("2027-01-01 00:05:00"), date, &a, &b), 0);
    assert_string_equal(date, "2026-12-31");

    assert_int_equal(gw_daily_log_date(sh("2026-11-28 23:59:59.999"), date), 0);
    assert_string_equal(date, "2026-11-28");
    assert_int_equal(gw_daily_log_date(sh("2026-11-29 00:00:00"), date), 0);
    assert_string_equal(date, "2026-11-29");
    assert_int_equal(gw_daily_log_next_day("2026-12-31", date), 0);
    assert_string_equal(date, "2027-01-01");
    assert_int_equal(gw_daily_log_prev_day("2028-03-01", date), 0);
    assert_string_equal(date, "2028-02-29");
    assert_int_equal(gw_daily_log_next_day("2026-02-30", date), -EINVAL);
    assert_int_equal(gw_daily_log_prev_day("x", date), -EINVAL);

    /* Berlin, the 23-hour day: its log is due at 00:05 CEST of the 30th */
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    assert_int_equal(gw_daily_log_due_day(1774821900LL * SEC, date, &a, &b), 0);
    assert_string_equal(date, "2026-03-29");
    assert_int_equal(gw_daily_log_due_day(1774821900LL * SEC - 1, date, &a, &b), 0);
    assert_string_equal(date, "2026-03-28");
    assert_int_equal(gw_daily_log_next_day("2026-03-28", date), 0);
    assert_string_equal(date, "2026-03-29");
    assert_int_equal(gw_daily_log_next_day("2026-03-29", date), 0);
    assert_string_equal(date, "2026-03-30");
    assert_int_equal(gw_daily_log_prev_day("2026-10-26", date), 0);
    assert_string_equal(date, "2026-10-25");
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_exact),
        cmocka_unit_test(test_markdown_zh),
        cmocka_unit_test(test_markdown_en),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_empty_day),
        cmocka_unit_test(test_given_outages),
        cmocka_unit_test(test_untimed_and_escaped),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_day_bounds),
        cmocka_unit_test(test_next_run),
        cmocka_unit_test(test_dst),
        cmocka_unit_test(test_golden_day),
        cmocka_unit_test(test_golden_next_day_so_far),
        cmocka_unit_test(test_golden_day_facts),
        cmocka_unit_test(test_history_fold),
        cmocka_unit_test(test_hazard_entries_en),
        cmocka_unit_test(test_hazard_entries_zh),
        cmocka_unit_test(test_hazard_later_change),
        cmocka_unit_test(test_hazard_csv),
        cmocka_unit_test(test_daily_hazards_fold),
        cmocka_unit_test(test_hazard_input),
        cmocka_unit_test(test_due_day),
        cmocka_unit_test(test_next_due),
    };
    return cmocka_run_group_tests(tests, setup_shanghai, NULL);
}
