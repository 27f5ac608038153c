//! # parlor-web-chat
//!
//! The browser chat page, embedded in the binary: [`router`] serves
//! `index.html` at `/` and its files under `/web-chat/`. The page talks to
//! the HTTP + raw WebSocket transport (`parlor-ws`) on the same origin
//! through `client/parlor.js`, a small client module that is also a
//! package of its own (`client/package.json`, `client/parlor.d.ts`,
//! `client/README.md`) for other pages to install.
//!
//! `parlor-server` mounts it, so the README's command is all it takes:
//!
//! Run with: `cargo run --release -p parlor-server -- --dev-auth`, then open
//! <http://127.0.0.1:8080/>.
//!
//! ```
//! let app: axum::Router = axum::Router::new().merge(parlor_web_chat::router());
//! # let _ = app;
//! ```

use axum::{
    Router,
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
};

/// One embedded file: its route, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 6] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../static/index.html"),
    },
    Asset {
        path: "/web-chat/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/app.js"),
    },
    Asset {
        path: "/web-chat/parlor.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../client/parlor.js"),
    },
    Asset {
        path: "/web-chat/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/style.css"),
    },
    Asset {
        path: "/web-chat/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../static/favicon.svg"),
    },
    // Browsers ask for it whatever the page says; an answer keeps a 404
    // out of the console.
    Asset {
        path: "/favicon.ico",
        content_type: "image/svg+xml",
        body: include_str!("../static/favicon.svg"),
    },
];

/// The page's routes: `/`, `/web-chat/{app.js, parlor.js, style.css,
/// favicon.svg}` and `/favicon.ico`.
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let (content_type, body) = (asset.content_type, asset.body);
        router.route(
            asset.path,
            // `no-cache` revalidates on every load, so an upgraded server is
            // never paired with a stale client module.
            get(move || async move {
                (
                    [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
                    body,
                )
                    .into_response()
            }),
        )
    })
}
