//! An address on which every connection is refused.

use std::net::SocketAddr;

/// Holds a loopback port bound but never listening: connections to it are refused at once,
/// and, unlike a port that was bound and released, no other listener can take it meanwhile.
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl RefusingPort {
    pub fn new() -> std::io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        Ok(Self { _socket: socket, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn connections_are_refused_and_the_port_stays_taken() {
        let port = RefusingPort::new().unwrap();
        let err = tokio::net::TcpStream::connect(port.addr()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(std::net::TcpListener::bind(port.addr()).is_err());
    }
}
