//! Routes for an axum application (feature `axum`).

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::any;

use crate::Scimlet;

impl Scimlet {
    /// Routes that send everything under [`Scimlet::prefixes`] (and the
    /// admin API's path when it is enabled) to this scimlet, for
    /// [`Router::merge`] into the application's router.
    ///
    /// Merge rather than nest: the component matches the path exactly as
    /// the client sent it, and `Router::nest` strips its prefix. Paths
    /// outside the prefixes stay the application's, its own 404 included.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let scim = self.clone();
        let handler = move |request: Request| {
            let scim = scim.clone();
            async move { scim.handle_body(request).await.map(Body::from) }
        };
        let mut router = Router::new();
        for prefix in self.prefixes() {
            router = router.route(&format!("{prefix}{{*rest}}"), any(handler.clone()));
        }
        if let Some(admin) = self.admin_api_path() {
            router = router.route(admin, any(handler.clone())).route(&format!("{admin}/{{*rest}}"), any(handler));
        }
        router
    }
}
