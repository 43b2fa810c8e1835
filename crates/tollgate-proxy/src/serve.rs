//! Serving an axum app on a TCP listener, with what a gateway facing a network needs and
//! `axum::serve` cannot be told: a deadline for request headers, so a client trickling them
//! cannot hold a connection forever; TCP_NODELAY, so small SSE events leave at once; the peer
//! address for handlers; and a graceful shutdown that lets requests in flight finish.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Limits on what clients may take their time over.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Longest a client may take to send a request's headers (also the longest an idle
    /// keep-alive connection stays open); the connection is closed after.
    pub header_read: Duration,
}

impl ServeLimits {
    /// From the process settings.
    pub fn from_settings(settings: &tollgate_config::Settings) -> Self {
        Self { header_read: settings.header_read_timeout }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for the connections in
/// flight to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));

    // Dropping the receiver tells every connection to finish; `closed` tells when all have.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (done_tx, done_rx) = watch::channel(());

    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_tx.closed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = app.clone().map_request(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(Body::new)
        });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let stop = stop_tx.clone();
        let done = done_rx.clone();
        let io = TokioIo::new(FirstBytesDeadline::new(tcp, limits.header_read));
        tokio::spawn(async move {
            let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
            let mut stopping = pin!(stop.closed());
            // `stopping` completes once; polling it again would panic, so after it has the
            // loop only waits for the connection to finish its graceful shutdown.
            let mut stopped = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !stopped => {
                        stopped = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
    Ok(())
}

/// Bytes the server reads to tell HTTP/1 from HTTP/2 (the length of HTTP/2's preface).
const VERSION_SNIFF: usize = 24;

/// A new connection whose first bytes must arrive within a deadline. Telling HTTP/1 from
/// HTTP/2 reads them before HTTP/1's own header deadline starts, so without this a client
/// that connects and sends nothing (or a few bytes) would hold the connection forever.
struct FirstBytesDeadline {
    tcp: tokio::net::TcpStream,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    seen: usize,
}

impl FirstBytesDeadline {
    fn new(tcp: tokio::net::TcpStream, limit: Duration) -> Self {
        Self { tcp, deadline: Some(Box::pin(tokio::time::sleep(limit))), seen: 0 }
    }
}

impl AsyncRead for FirstBytesDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            self.seen += buf.filled().len() - before;
        }
        if self.seen >= VERSION_SNIFF {
            self.deadline = None;
        } else if read.is_pending()
            && let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client sent no request in time",
            )));
        }
        read
    }
}

impl AsyncWrite for FirstBytesDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_in_flight_at_shutdown_is_answered_before_serve_returns() {
        let app = Router::new().route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = ServeLimits { header_read: Duration::from_secs(5) };
        let server = tokio::spawn(serve(
            listener,
            app,
            async {
                let _ = stopped.await;
            },
            limits,
        ));
        let request = tokio::spawn(async move {
            let client = tollgate_providers::build_http_client().expect("client");
            let resp = client.get(format!("http://{addr}/slow")).send().await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let (status, body) = request.await.unwrap().expect("the request in flight is answered");
        assert_eq!((status.as_u16(), body.as_str()), (200, "done"));
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns once the connection is done")
            .unwrap()
            .unwrap();
    }
}
