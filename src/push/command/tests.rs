//! Unit tests for backend command parsing.

use super::*;
use serde_json::json;

pub(super) fn ok(line: &str) -> Command<'_> {
    match parse(line.as_bytes()) {
        Ok(cmd) => cmd,
        Err(e) => panic!("{line}: {e}"),
    }
}

pub(super) fn err(line: &str) -> CommandError {
    match parse(line.as_bytes()) {
        Ok(cmd) => panic!("{line}: parsed as {cmd:?}"),
        Err(e) => e,
    }
}

pub(super) fn c(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

pub(super) fn wrong(field: &'static str, expected: &'static str) -> CommandError {
    CommandError::WrongType { field, expected }
}

#[test]
fn compat_push() {
    let cmd = ok(r#"{"uid":"u1","content":{"a":[1,2]},"data":"x"}"#);
    assert_eq!(cmd, Command::CompatPush { uid: c("u1") });
    // Borrowed from the line when it has no escapes.
    assert!(matches!(
        cmd,
        Command::CompatPush {
            uid: Cow::Borrowed(_)
        }
    ));
    // Escapes are decoded; a repeated key keeps its last value (PHP's json_decode).
    assert_eq!(
        ok(r#"{"uid":"a\u0062"}"#),
        Command::CompatPush { uid: c("ab") }
    );
    assert_eq!(
        ok(r#"{"uid":"a","uid":"b"}"#),
        Command::CompatPush { uid: c("b") }
    );
    // A key is compared decoded, as PHP's json_decode reads it.
    assert_eq!(
        ok(r#"{"u\u0069d":"k","cmd\u0000":"x"}"#),
        Command::CompatPush { uid: c("k") }
    );
    assert_eq!(
        ok(" {\"uid\":\"x\"} \r\n"),
        Command::CompatPush { uid: c("x") }
    );
    assert_eq!(
        ok(r#"{"broadcast":false,"uid":"x"}"#),
        Command::CompatPush { uid: c("x") }
    );
}

#[test]
fn compat_broadcast() {
    assert_eq!(
        ok(r#"{"broadcast":true,"msg":"hi"}"#),
        Command::CompatBroadcast
    );
    assert_eq!(
        ok(r#"{"uid":"x","broadcast":true}"#),
        Command::CompatBroadcast
    );
    // Only `true` broadcasts; anything else falls back to needing a uid.
    assert_eq!(err(r#"{"broadcast":1}"#), CommandError::MissingField("uid"));
}

#[test]
fn compat_errors() {
    assert_eq!(err(r#"{"uid":["x"]}"#), wrong("uid", "a string"));
    assert_eq!(err(r#"{"uid":42}"#), wrong("uid", "a string"));
    assert_eq!(err(r#"{"uid":{"a":1}}"#), wrong("uid", "a string"));
    assert_eq!(err(r#"{"uid":null}"#), CommandError::MissingField("uid"));
    assert_eq!(err(r#"{"msg":"x"}"#), CommandError::MissingField("uid"));
    assert_eq!(err("{}"), CommandError::MissingField("uid"));
    assert_eq!(err(r#"{"uid":""}"#), CommandError::EmptyField("uid"));
}

#[test]
fn not_json_or_not_object() {
    for line in [
        "",
        "   ",
        "{",
        r#"{"uid":"x""#,
        r#"{"uid":"x"} x"#,
        "{uid:1}",
        "\u{1}",
        "[1,",
    ] {
        assert_eq!(err(line), CommandError::NotJson, "{line:?}");
    }
    assert_eq!(parse(b"{\"uid\":\"\xff\"}"), Err(CommandError::NotJson));
    // Bytes that are not UTF-8 make the line not JSON wherever they are, in values nobody
    // reads as well: push.php's line goes on whole as a WebSocket text frame.
    for line in [
        &b"{\"uid\":\"u\",\"pad\":\"\xff\"}"[..],
        b"{\"broadcast\":true,\"x\":[\"\xc3\"]}",
        b"{\"uid\":\"u\",\"s\":\"\xed\xa0\x80\"}",
    ] {
        let refused = parse_request(line).unwrap_err();
        assert_eq!(refused.error, CommandError::NotJson, "{line:?}");
        assert_eq!(refused.mode, Mode::Compat, "{line:?}");
    }
    let extended = parse_request(b"{\"cmd\":\"push\",\"uid\":\"u\",\"data\":\"\xff\"}");
    assert_eq!(
        extended.unwrap_err(),
        Refused {
            mode: Mode::Extended,
            error: CommandError::NotJson
        }
    );
    assert_eq!(
        parse_body("push", b"{\"uid\":\"u\",\"data\":\"ok\",\"x\":\"\xff\"}"),
        Err(CommandError::NotJson)
    );
    for line in ["[]", r#"["uid"]"#, r#""uid""#, "42", "null", "true"] {
        assert_eq!(err(line), CommandError::NotObject, "{line:?}");
    }
}

#[test]
fn cancel_and_scheduled() {
    assert_eq!(ok(r#"{"cmd":"cancel","id":7}"#), Command::Cancel { id: 7 });
    assert_eq!(err(r#"{"cmd":"cancel"}"#), CommandError::MissingField("id"));
    let int = "a non-negative integer";
    for id in ["-1", "1.5", "\"7\"", "true"] {
        assert_eq!(
            err(&format!(r#"{{"cmd":"cancel","id":{id}}}"#)),
            wrong("id", int),
            "{id}"
        );
    }
    assert_eq!(
        ok(r#"{"cmd":"scheduled"}"#),
        Command::Scheduled {
            limit: DEFAULT_LIMIT
        }
    );
    assert_eq!(
        ok(r#"{"cmd":"scheduled","limit":5}"#),
        Command::Scheduled { limit: 5 }
    );
    assert_eq!(
        ok(r#"{"cmd":"scheduled","limit":5000}"#),
        Command::Scheduled { limit: MAX_LIMIT }
    );
    assert_eq!(
        err(r#"{"cmd":"scheduled","limit":"5"}"#),
        wrong("limit", int)
    );
}

#[test]
fn groups() {
    let (g, u) = (c("g"), c("u"));
    assert_eq!(
        ok(r#"{"cmd":"join","group":"g","uid":"u"}"#),
        Command::Join {
            group: g.clone(),
            uid: u.clone()
        }
    );
    assert_eq!(
        ok(r#"{"cmd":"leave","uid":"u","group":"g"}"#),
        Command::Leave {
            group: g.clone(),
            uid: u
        }
    );
    assert_eq!(
        ok(r#"{"cmd":"members","group":"g"}"#),
        Command::Members { group: g }
    );
    assert_eq!(
        err(r#"{"cmd":"join","group":"g"}"#),
        CommandError::MissingField("uid")
    );
    assert_eq!(
        err(r#"{"cmd":"leave","uid":"u"}"#),
        CommandError::MissingField("group")
    );
    assert_eq!(
        err(r#"{"cmd":"members","group":""}"#),
        CommandError::EmptyField("group")
    );
    assert_eq!(
        err(r#"{"cmd":"members","group":1}"#),
        wrong("group", "a string")
    );
}

#[test]
fn online_totals_kick_auth() {
    assert_eq!(
        ok(r#"{"cmd":"online","uid":"u"}"#),
        Command::Online { uid: c("u") }
    );
    assert_eq!(
        err(r#"{"cmd":"online"}"#),
        CommandError::MissingField("uid")
    );
    assert_eq!(
        ok(r#"{"cmd":"online_list"}"#),
        Command::OnlineList {
            offset: 0,
            limit: 100
        }
    );
    assert_eq!(
        ok(r#"{"cmd":"online_list","offset":20,"limit":1001}"#),
        Command::OnlineList {
            offset: 20,
            limit: 1000
        }
    );
    assert_eq!(
        err(r#"{"cmd":"online_list","offset":-1}"#),
        wrong("offset", "a non-negative integer")
    );
    assert_eq!(ok(r#"{"cmd":"totals","x":1}"#), Command::Totals);
    assert_eq!(
        ok(r#"{"cmd":"kick","uid":"u"}"#),
        Command::Kick {
            uid: c("u"),
            reason: None
        }
    );
    assert_eq!(
        ok(r#"{"cmd":"kick","uid":"u","reason":"bye"}"#),
        Command::Kick {
            uid: c("u"),
            reason: Some(c("bye"))
        }
    );
    assert_eq!(
        err(r#"{"cmd":"kick","uid":"u","reason":1}"#),
        wrong("reason", "a string")
    );
    assert_eq!(
        ok(r#"{"cmd":"auth","secret":"s3"}"#),
        Command::Auth { secret: c("s3") }
    );
    assert_eq!(
        err(r#"{"cmd":"auth"}"#),
        CommandError::MissingField("secret")
    );
    assert_eq!(
        err(r#"{"cmd":"auth","secret":123}"#),
        wrong("secret", "a string")
    );
}

#[test]
fn cmd_errors() {
    assert_eq!(
        err(r#"{"cmd":"nope"}"#),
        CommandError::UnknownCommand("nope".into())
    );
    assert_eq!(
        err(r#"{"cmd":""}"#),
        CommandError::UnknownCommand(String::new())
    );
    assert_eq!(
        err(r#"{"cmd":"PUSH"}"#),
        CommandError::UnknownCommand("PUSH".into())
    );
    assert_eq!(err(r#"{"cmd":1,"uid":"u"}"#), wrong("cmd", "a string"));
    assert_eq!(err(r#"{"cmd":null,"uid":"u"}"#), wrong("cmd", "a string"));
    // A long unknown name is cut on a char boundary.
    let long = format!(r#"{{"cmd":"{}"}}"#, "é".repeat(100));
    assert_eq!(err(&long), CommandError::UnknownCommand("é".repeat(32)));
}

#[test]
fn display() {
    let cases = [
        (CommandError::NotJson, "not valid JSON"),
        (CommandError::NotObject, "not a JSON object"),
        (CommandError::MissingField("uid"), "missing field: uid"),
        (wrong("uid", "a string"), "field uid must be a string"),
        (
            CommandError::EmptyField("group"),
            "field group must not be empty",
        ),
        (CommandError::UnknownCommand("x".into()), "unknown cmd: x"),
        (
            CommandError::TargetCount,
            "push needs exactly one target: uid, uids, group or all:true",
        ),
        (
            CommandError::BadWhen("delay must be >= 0"),
            "delay must be >= 0",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn replies() {
    let e = CommandError::UnknownCommand("a\"b".into());
    assert_eq!(
        error_reply(&e),
        r#"{"error":"unknown cmd: a\"b","ok":false}"#
    );
    let reply: serde_json::Value = serde_json::from_str(&error_reply(&e)).unwrap_or_default();
    assert_eq!(reply, json!({"ok": false, "error": "unknown cmd: a\"b"}));
    let mut fields = serde_json::Map::new();
    fields.insert("id".into(), json!(3));
    assert_eq!(ok_reply(fields), r#"{"id":3,"ok":true}"#);
    assert_eq!(ok_reply(serde_json::Map::new()), r#"{"ok":true}"#);
}

#[test]
fn the_mode_of_a_refused_line_is_told_by_a_top_level_cmd_key() {
    let deep = format!(
        r#"{{"cmd":"push","data":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(parse(deep.as_bytes()).is_err(), "serde_json's depth limit");
    assert!(is_extended(deep.as_bytes()));
    let deep_first = format!(
        r#"{{"x":{}{},"cmd":"totals"}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(is_extended(deep_first.as_bytes()));
    for extended in [
        r#"{"cmd":"nope"}"#,
        r#" { "cmd" : 1 } "#,
        r#"{"a":"}","cmd":"push""#,
        r#"{"a":"\"cmd\":","cmd":"x"}"#,
    ] {
        assert!(is_extended(extended.as_bytes()), "{extended}");
    }
    for compat in [
        r#"{"uid":"u","data":{"cmd":"push"}}"#,
        r#"{"uid":"cmd"}"#,
        r#"{"uid":"u","x":"\"cmd\":"}"#,
        r#"["cmd"]"#,
        "not json",
        r#"{"uid":"\"#,
        "",
    ] {
        assert!(!is_extended(compat.as_bytes()), "{compat}");
    }
}

#[test]
fn parse_request_tells_the_mode_of_every_refusal_in_one_pass() {
    fn mode(line: &str) -> Result<Mode, Mode> {
        parse_request(line.as_bytes())
            .map(|c| c.mode())
            .map_err(|r| r.mode)
    }
    for (line, expected) in [
        (r#"{"uid":""}"#, Mode::Compat),
        (r#"{"data":1}"#, Mode::Compat),
        (r#"["cmd"]"#, Mode::Compat),
        ("not json", Mode::Compat),
        (r#"{"cmd":"nope"}"#, Mode::Extended),
        (r#"{"cmd":1}"#, Mode::Extended),
        (r#"{"cmd":"push","uid":"u"}"#, Mode::Extended),
        (r#"{"a":"}","cmd":"push""#, Mode::Extended),
    ] {
        assert_eq!(mode(line), Err(expected), "{line}");
        // The same error `parse` reports.
        let refused = parse_request(line.as_bytes()).unwrap_err();
        assert_eq!(parse(line.as_bytes()), Err(refused.error), "{line}");
    }
    assert_eq!(
        parse_request(br#"{"uid":"u"}"#).unwrap().mode(),
        Mode::Compat
    );
    assert_eq!(
        parse_request(br#"{"cmd":"totals"}"#).unwrap().mode(),
        Mode::Extended
    );
}

#[test]
fn a_body_or_query_named_by_the_path_parses_as_the_line_with_that_cmd() {
    let body = br#"{"cmd":"members","group":"g","uid":"u"}"#;
    assert_eq!(
        parse_body("join", body),
        parse(br#"{"cmd":"join","group":"g","uid":"u"}"#)
    );
    assert_eq!(parse_body("totals", b" \r\n"), Ok(Command::Totals));
    assert_eq!(parse_body("totals", b"[1]"), Err(CommandError::NotObject));
    assert_eq!(parse_body("totals", b"{"), Err(CommandError::NotJson));
    assert_eq!(
        parse_body("online", b"{}"),
        Err(CommandError::MissingField("uid"))
    );

    let pairs = |list: &'static [(&'static str, &'static str)]| {
        list.iter().map(|&(k, v)| (k, Cow::Borrowed(v)))
    };
    assert_eq!(
        parse_query(
            "online_list",
            pairs(&[("offset", "5"), ("limit", "2"), ("x", "y")])
        ),
        Ok(Command::OnlineList {
            offset: 5,
            limit: 2
        })
    );
    assert_eq!(
        parse_query("online", pairs(&[("uid", "42")])),
        Err(CommandError::WrongType {
            field: "uid",
            expected: "a string"
        }),
        "a number-like value is a number, as the typed JSON would be"
    );
    assert_eq!(
        parse_query("members", pairs(&[("group", "team a"), ("cmd", "kick")])),
        Ok(Command::Members {
            group: "team a".into()
        })
    );
    assert_eq!(
        parse_query("online_list", pairs(&[("limit", "true")])),
        Err(CommandError::WrongType {
            field: "limit",
            expected: "a non-negative integer"
        })
    );
}

#[test]
fn the_one_pass_read_of_push_php_lines_agrees_with_the_loose_scan() {
    let deep = format!(
        r#"{{"uid":"u","x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let mut lines: Vec<&[u8]> = vec![
        br#"{"uid":"u1","percent":"88%"}"#,
        br#"{"uid":"u1"}"#,
        b" {\"uid\":\"x\"} \r\n",
        br#"{"uid":""}"#,
        br#"{"uid":null}"#,
        br#"{"uid":1}"#,
        br#"{"uid":true}"#,
        br#"{"uid":["a"]}"#,
        br#"{"uid":{"a":1}}"#,
        br#"{}"#,
        br#"{"broadcast":true}"#,
        br#"{"broadcast":false}"#,
        br#"{"broadcast":false,"uid":"x"}"#,
        br#"{"broadcast":true,"uid":5}"#,
        br#"{"broadcast":"true","uid":"x"}"#,
        br#"{"broadcast":1,"uid":"x"}"#,
        br#"{"broadcast":null,"uid":"x"}"#,
        br#"{"uid":"a","uid":"b"}"#,
        br#"{"uid":"a","uid":1}"#,
        br#"{"uid":1,"uid":"a"}"#,
        br#"{"broadcast":true,"broadcast":false,"uid":"x"}"#,
        br#"{"u\u0069d":"k"}"#,
        br#"{"uid":"a\u0062"}"#,
        br#"{"uid":"\ud800"}"#,
        b"{\"uid\":\"\xff\"}",
        br#"{"cmd":"push","uid":"u","data":"x"}"#,
        br#"{"cmd":null,"uid":"u"}"#,
        br#"{"cmd":1}"#,
        br#"{"uid":"u","cmd":"online"}"#,
        br#"{"c\u006dd":"totals"}"#,
        br#"["uid"]"#,
        br#""uid""#,
        b"1",
        b"null",
        b"",
        b"   ",
        b"{",
        br#"{"uid":"u""#,
        br#"{"uid":"u"}}"#,
        br#"{"uid":"u"} x"#,
        br#"{"uid":"u",}"#,
        b"{'uid':'u'}",
        br#"{"uid":"u","content":{"a":[1,2,{"b":null}]},"data":"x"}"#,
        br#"{"uid":"u","n":1e400}"#,
        "\u{feff}{\"uid\":\"u\"}".as_bytes(),
    ];
    lines.push(deep.as_bytes());
    for line in lines {
        assert_eq!(
            parse_request(line),
            parse_uncommon(line),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}
