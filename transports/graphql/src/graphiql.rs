//! The GraphiQL page served on `GET /graphql` to browsers (`Accept:
//! text/html`). Its scripts come from the unpkg CDN; when they have not
//! loaded after [`CDN_PATIENCE_MS`] the page says so instead of showing
//! "Loading..." forever. With [`GraphqlConfig::graphiql_token`] it opens
//! with that token in the `Authorization` header (HTTP) and in
//! `connection_init` (subscriptions).
//!
//! [`GraphqlConfig::graphiql_token`]: crate::GraphqlConfig::graphiql_token

use async_graphql::http::GraphiQLSource;

/// How long the page waits for the CDN's scripts before saying they did
/// not come (ms).
pub(crate) const CDN_PATIENCE_MS: u32 = 5000;

/// What the page says when the CDN's scripts did not load.
pub(crate) const CDN_MISSING: &str = "GraphiQL could not load its scripts from unpkg.com \
(no network access to the CDN?). The API itself works: POST queries to /graphql, \
or open this page from a machine that can reach unpkg.com.";

/// The page, built once per transport.
pub(crate) fn page(token: Option<&str>) -> String {
    let header = token.map(|t| format!("Bearer {t}"));
    let mut source = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .title("Parlor GraphiQL");
    if let Some(header) = header.as_deref() {
        source = source
            .header("Authorization", header)
            .ws_connection_param("authorization", header);
    }
    let html = source.finish();
    // First thing in <head>: the CDN scripts below block the parser, so a
    // watchdog placed after them would never run while they hang.
    let watchdog = format!(
        "<script>setTimeout(function () {{\n  if (typeof GraphiQL !== 'undefined') return;\n  \
         var el = document.getElementById('graphiql');\n  \
         if (!el) {{ el = document.createElement('div'); el.id = 'graphiql-missing';\n    \
         (document.body || document.documentElement).appendChild(el); }}\n  \
         el.textContent = {message};\n}}, {CDN_PATIENCE_MS});</script>\n",
        message = serde_json::Value::from(CDN_MISSING),
    );
    html.replacen("<head>", &format!("<head>\n    {watchdog}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_token_and_the_watchdog() {
        let page = page(Some("dev:guest"));
        assert!(
            page.contains("'Authorization': 'Bearer dev:guest'"),
            "{page}"
        );
        assert!(
            page.contains("'authorization': 'Bearer dev:guest'"),
            "{page}"
        );
        let watchdog = page.find(CDN_MISSING).expect("watchdog");
        assert!(watchdog < page.find("unpkg.com/react@").expect("cdn script"));
        assert!(!self::page(None).contains("Authorization"));
    }
}
