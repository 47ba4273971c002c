//! The demo page without a browser (tests/browser_e2e.rs runs it in Chromium): the settings
//! its snippets use name the APIs' real ports and never the API secret.

mod common;

use common::daemon::*;
use serde_json::Value;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut resp = ureq::get(&format!("http://{addr}{path}"))
        .call()
        .expect("GET");
    resp.body_mut().read_to_string().unwrap()
}

/// The JSON object the server put into the page.
fn settings(page: &str) -> Value {
    let start = page.find("var settings = ").expect("settings in the page") + 15;
    let end = start + page[start..].find(" || ").expect("the fallback");
    serde_json::from_str(&page[start..end]).expect("settings are JSON")
}

#[test]
fn demo_page_names_the_real_api_ports_and_not_the_secret() {
    let dir = TempDir::new("demo-page");
    let secret = "very-s3cret";
    let p = Pushman::start(&dir.config(&format!(
        "[auth]\nmode = \"token\"\nsecret = \"k3y\"\napi_secret = \"{secret}\"\n"
    )));
    let page = get(p.ws, "/");
    assert!(!page.contains(secret), "the page leaks api_secret");
    let s = settings(&page);
    assert_eq!(s["text"], p.text.to_string());
    assert_eq!(s["http"], p.http.to_string());
    assert_eq!(s["api_secret"], true);
    assert_eq!(s["auth"], "token");
    assert!(get(p.ws, "/pushman.js").contains("pushman=1"));
}

#[test]
fn without_an_api_secret_the_page_says_so() {
    let dir = TempDir::new("demo-page-open");
    let p = Pushman::start(&dir.config(""));
    let s = settings(&get(p.ws, "/"));
    assert_eq!(s["api_secret"], false);
    assert_eq!(s["auth"], "none");
}
