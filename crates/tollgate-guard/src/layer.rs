//! Any [`Rule`] as a tower middleware.

use std::fmt;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures_util::future::Either;
use http::{HeaderMap, Method, Request, Response, Uri};
use tower::{Layer, Service};

use crate::Refusal;

/// What a rule looks at: the request without its body.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target; carries the authority in HTTP/2 (`:authority`) and absolute-form requests.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// Whether a body may follow (a `Content-Length` above 0, chunked, an open HTTP/2 stream).
    pub has_body: bool,
}

impl<'a> Head<'a> {
    /// The head of `request`.
    pub fn of<B: http_body::Body>(request: &'a Request<B>) -> Self {
        let body = request.body();
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            has_body: !body.is_end_stream() && body.size_hint().exact() != Some(0),
        }
    }

    /// The authority the client addressed: the `Host` header, else the URI's (HTTP/2).
    /// `Some("")` when the `Host` header is not text.
    pub fn host(&self) -> Option<&'a str> {
        match self.headers.get(http::header::HOST) {
            Some(v) => Some(v.to_str().unwrap_or("")),
            None => self.uri.authority().map(http::uri::Authority::as_str),
        }
    }
}

/// A check of a request's head.
pub trait Rule: Clone + Send + Sync + 'static {
    /// `Ok` to let the request through.
    fn check(&self, head: &Head<'_>) -> Result<(), Refusal>;
}

/// How an app answers a refusal, in the protocol of the route `head` addresses.
pub type Refuse<B> = fn(&Refusal, &Head<'_>) -> Response<B>;

/// Applies `rule` to every request of the wrapped service; refused requests are answered by
/// `refuse` and never reach it.
pub struct GuardLayer<R, B> {
    rule: R,
    refuse: Refuse<B>,
}

impl<R, B> GuardLayer<R, B> {
    /// A layer applying `rule`, answering refusals with `refuse`.
    pub fn new(rule: R, refuse: Refuse<B>) -> Self {
        Self { rule, refuse }
    }
}

impl<R: Clone, B> Clone for GuardLayer<R, B> {
    fn clone(&self) -> Self {
        Self { rule: self.rule.clone(), refuse: self.refuse }
    }
}

impl<R: fmt::Debug, B> fmt::Debug for GuardLayer<R, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardLayer").field("rule", &self.rule).finish_non_exhaustive()
    }
}

impl<S, R: Clone, B> Layer<S> for GuardLayer<R, B> {
    type Service = Guard<S, R, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard { inner, rule: self.rule.clone(), refuse: self.refuse }
    }
}

/// The service [`GuardLayer`] wraps around another.
pub struct Guard<S, R, B> {
    inner: S,
    rule: R,
    refuse: Refuse<B>,
}

impl<S: Clone, R: Clone, B> Clone for Guard<S, R, B> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), rule: self.rule.clone(), refuse: self.refuse }
    }
}

impl<S, R: fmt::Debug, B> fmt::Debug for Guard<S, R, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("rule", &self.rule).finish_non_exhaustive()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S, R, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: Rule,
    ReqBody: http_body::Body,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let head = Head::of(&request);
        match self.rule.check(&head) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refusal) => Either::Left(ready(Ok((self.refuse)(&refusal, &head)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    /// Refuses requests carrying `x-refuse`.
    #[derive(Debug, Clone)]
    struct Marked;

    impl Rule for Marked {
        fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
            match head.headers.get("x-refuse") {
                Some(_) => Err(Refusal::CrossSite { why: "marked".into() }),
                None => Ok(()),
            }
        }
    }

    fn refuse(refusal: &Refusal, head: &Head<'_>) -> Response<String> {
        let mut r = Response::new(format!("{} {}", refusal.code(), head.uri.path()));
        *r.status_mut() = refusal.status();
        r
    }

    async fn send(request: Request<String>) -> Response<String> {
        let inner = tower::service_fn(|req: Request<String>| async move {
            Ok::<_, Infallible>(Response::new(format!("served {}", req.body())))
        });
        GuardLayer::new(Marked, refuse)
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {})
    }

    #[tokio::test]
    async fn refused_requests_are_answered_by_the_app_and_never_reach_the_service() {
        let passed = send(Request::new("body".to_owned())).await;
        assert_eq!(passed.body(), "served body");
        let marked = Request::builder().uri("/key/generate").header("x-refuse", "1");
        let refused = send(marked.body("body".to_owned()).unwrap()).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(refused.body(), "cross_site_request /key/generate");
    }

    #[test]
    fn heads_tell_bodies_and_hosts() {
        let empty = Request::new(String::new());
        assert!(!Head::of(&empty).has_body);
        let full = Request::new("x".to_owned());
        assert!(Head::of(&full).has_body);
        let h2 = Request::builder()
            .uri("https://gw.example:8443/v1/models")
            .body(String::new())
            .unwrap();
        assert_eq!(Head::of(&h2).host(), Some("gw.example:8443"));
        let h1 = Request::builder()
            .uri("/v1/models")
            .header("host", "localhost:4000")
            .body(String::new())
            .unwrap();
        assert_eq!(Head::of(&h1).host(), Some("localhost:4000"));
        assert_eq!(Head::of(&Request::new(String::new())).host(), None);
    }
}
