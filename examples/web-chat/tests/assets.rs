//! The embedded page and its modules are served with the right types.

#[tokio::test]
async fn serves_the_page_and_its_modules() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, parlor_web_chat::router()).await });
    let http = reqwest::Client::new();
    for (path, content_type, needle) in [
        (
            "/",
            "text/html",
            "<script type=\"module\" src=\"/web-chat/app.js\">",
        ),
        (
            "/web-chat/app.js",
            "text/javascript",
            "from \"./parlor.js\"",
        ),
        (
            "/web-chat/parlor.js",
            "text/javascript",
            "export class ParlorClient",
        ),
        ("/web-chat/style.css", "text/css", "#composer"),
        ("/web-chat/favicon.svg", "image/svg+xml", "<svg"),
        ("/favicon.ico", "image/svg+xml", "<svg"),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let got = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(got.starts_with(content_type), "{path}: {got}");
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
    let missing = http
        .get(format!("{base}/web-chat/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
