//! Unit tests for parsing `cmd: push`: targets, payload and timing.

use super::tests::{c, err, ok, wrong};
use super::*;

#[test]
fn push_targets() {
    let push = |target| Command::Push {
        target,
        data: c("hi"),
        when: When::Now,
    };
    assert_eq!(
        ok(r#"{"cmd":"push","uid":"u","data":"hi"}"#),
        push(Target::Uid(c("u")))
    );
    assert_eq!(
        ok(r#"{"cmd":"push","uids":["a","b"],"data":"hi"}"#),
        push(Target::Uids(vec![c("a"), c("b")]))
    );
    assert_eq!(
        ok(r#"{"cmd":"push","group":"g","data":"hi"}"#),
        push(Target::Group(c("g")))
    );
    assert_eq!(
        ok(r#"{"cmd":"push","all":true,"data":"hi"}"#),
        push(Target::All)
    );
    // `all: false` and nulls are not targets.
    assert_eq!(
        ok(r#"{"cmd":"push","all":false,"group":null,"uid":"u","data":"hi"}"#),
        push(Target::Uid(c("u")))
    );
}

#[test]
fn push_target_errors() {
    let e = |s: &str| err(s);
    assert_eq!(e(r#"{"cmd":"push","data":"x"}"#), CommandError::TargetCount);
    assert_eq!(
        e(r#"{"cmd":"push","uid":"a","group":"g","data":"x"}"#),
        CommandError::TargetCount
    );
    assert_eq!(
        e(r#"{"cmd":"push","uids":["a"],"all":true,"data":"x"}"#),
        CommandError::TargetCount
    );
    assert_eq!(
        e(r#"{"cmd":"push","all":1,"data":"x"}"#),
        wrong("all", "a boolean")
    );
    assert_eq!(
        e(r#"{"cmd":"push","uid":"","data":"x"}"#),
        CommandError::EmptyField("uid")
    );
    assert_eq!(
        e(r#"{"cmd":"push","group":"","data":"x"}"#),
        CommandError::EmptyField("group")
    );
    assert_eq!(
        e(r#"{"cmd":"push","group":7,"data":"x"}"#),
        wrong("group", "a string")
    );
    assert_eq!(
        e(r#"{"cmd":"push","uids":[],"data":"x"}"#),
        CommandError::EmptyField("uids")
    );
    assert_eq!(
        e(r#"{"cmd":"push","uids":["a",""],"data":"x"}"#),
        CommandError::EmptyField("uids")
    );
    let list = "a non-empty array of strings";
    assert_eq!(
        e(r#"{"cmd":"push","uids":"a","data":"x"}"#),
        wrong("uids", list)
    );
    assert_eq!(
        e(r#"{"cmd":"push","uids":["a",1],"data":"x"}"#),
        wrong("uids", list)
    );
}

#[test]
fn push_data() {
    let data = |line| match ok(line) {
        Command::Push { data, .. } => data.into_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        data(r#"{"cmd":"push","all":true,"data":"a\"b\n"}"#),
        "a\"b\n"
    );
    assert_eq!(
        data(r#"{"cmd":"push","all":true,"data":{"x":[1, 2.5, true]}}"#),
        r#"{"x":[1,2.5,true]}"#
    );
    assert_eq!(
        data(r#"{"cmd":"push","all":true,"data":[ "a" , {} ]}"#),
        r#"["a",{}]"#
    );
    assert_eq!(data(r#"{"cmd":"push","all":true,"data":-3}"#), "-3");
    assert_eq!(data(r#"{"cmd":"push","all":true,"data":false}"#), "false");
    assert_eq!(data(r#"{"cmd":"push","all":true,"data":""}"#), "");
    assert_eq!(
        err(r#"{"cmd":"push","all":true}"#),
        CommandError::MissingField("data")
    );
    assert_eq!(
        err(r#"{"cmd":"push","all":true,"data":null}"#),
        CommandError::MissingField("data")
    );
}

#[test]
fn push_when() {
    let when = |line| match ok(line) {
        Command::Push { when, .. } => when,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        when(r#"{"cmd":"push","all":true,"data":"x","delay":5}"#),
        When::Delay(5.0)
    );
    assert_eq!(
        when(r#"{"cmd":"push","all":true,"data":"x","delay":0.25}"#),
        When::Delay(0.25)
    );
    assert_eq!(
        when(r#"{"cmd":"push","all":true,"data":"x","delay":0}"#),
        When::Delay(0.0)
    );
    assert_eq!(
        when(r#"{"cmd":"push","all":true,"data":"x","at":1700000000.5}"#),
        When::At(1_700_000_000.5)
    );
    assert_eq!(
        when(r#"{"cmd":"push","all":true,"data":"x","delay":null}"#),
        When::Now
    );
    let bad = |line| err(line);
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","delay":1,"at":2}"#),
        CommandError::BadWhen("give delay or at, not both")
    );
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","delay":-1}"#),
        CommandError::BadWhen("delay must be >= 0")
    );
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","at":-0.5}"#),
        CommandError::BadWhen("at must be >= 0")
    );
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","delay":"5"}"#),
        wrong("delay", "a number")
    );
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","at":[1]}"#),
        wrong("at", "a number")
    );
    // JSON has no infinity; an overflowing literal is not JSON serde_json accepts.
    assert_eq!(
        bad(r#"{"cmd":"push","all":true,"data":"x","delay":1e400}"#),
        CommandError::NotJson
    );
}

#[test]
fn when_at_ms() {
    assert_eq!(When::Now.at_ms(1000), Ok(None));
    // `now` is rounded down to the millisecond, so a delay adds one: never early.
    assert_eq!(When::Delay(1.5).at_ms(1000), Ok(Some(2501)));
    assert_eq!(When::Delay(0.0004).at_ms(1000), Ok(Some(1002)));
    assert_eq!(When::Delay(0.0).at_ms(1000), Ok(None));
    let now = 1_700_000_000_000;
    assert_eq!(
        When::At(1_700_000_000.25).at_ms(now),
        Ok(Some(1_700_000_000_250))
    );
    // A past `at` is returned as is; the caller sends it now.
    assert_eq!(When::At(5.0).at_ms(now), Ok(Some(5000)));
}

#[test]
fn when_is_bounded_to_one_year_ahead() {
    let now = 1_700_000_000_000;
    let year_s = (MAX_AHEAD_MS / 1000) as f64;
    // Exactly one year is accepted, a millisecond more is not.
    assert_eq!(
        When::Delay(year_s).at_ms(now),
        Ok(Some(now + MAX_AHEAD_MS + 1))
    );
    let too_far = CommandError::BadWhen("delay must be at most 31536000 s (365 days)");
    assert_eq!(When::Delay(year_s + 0.001).at_ms(now), Err(too_far.clone()));
    assert_eq!(When::Delay(1e12).at_ms(now), Err(too_far.clone()));
    assert_eq!(When::Delay(1e300).at_ms(now), Err(too_far));
    let at_year = (now + MAX_AHEAD_MS) as f64 / 1000.0;
    assert_eq!(When::At(at_year).at_ms(now), Ok(Some(now + MAX_AHEAD_MS)));
    assert_eq!(
        When::At(at_year + 0.001).at_ms(now),
        Err(CommandError::BadWhen(
            "at must be at most 365 days (31536000 s) from now"
        ))
    );
    assert!(When::At(1e300).at_ms(now).is_err());
}

#[test]
fn target_to_stored() {
    assert_eq!(
        Target::Uid(c("u")).to_stored(),
        StoredTarget::Uid("u".into())
    );
    assert_eq!(
        Target::Uids(vec![c("a"), c("b")]).to_stored(),
        StoredTarget::Uids(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        Target::Group(c("g")).to_stored(),
        StoredTarget::Group("g".into())
    );
    assert_eq!(Target::All.to_stored(), StoredTarget::All);
}
