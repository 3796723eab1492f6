//! A TCP stream that acknowledges what it receives at once.
//!
//! Why: servers keep Nagle's algorithm on (Prosody 0.12 does). A reply longer than a
//! couple of segments then has its tail held back until its start is acknowledged,
//! and Linux delays that acknowledgement by up to 40 ms, which a pubsub read then
//! mostly consists of (doc/performance.rst, "Design figures"). `TCP_NODELAY` on our side does not help — the wait is on the
//! server's side — and Linux leaves quick-ack mode by itself, so `TCP_QUICKACK` is
//! set again after every read. Costs: a few more ACK segments, no latency.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct QuickAck(TcpStream);

impl QuickAck {
    pub fn new(tcp: TcpStream) -> Self {
        let s = Self(tcp);
        s.ack_now();
        s
    }

    fn ack_now(&self) {
        #[cfg(target_os = "linux")]
        if let Err(e) = socket2::SockRef::from(&self.0).set_tcp_quickack(true) {
            tracing::debug!(error = %e, "setting TCP_QUICKACK");
        }
    }

    #[cfg(test)]
    fn inner(&self) -> &TcpStream {
        &self.0
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.ack_now();
        }
        r
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Data goes through both ways, and quick-ack mode is on after a read.
    #[tokio::test]
    async fn passes_data_and_acks_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = QuickAck::new(client.unwrap());
        let (mut server, _) = server.unwrap();
        // As when Linux has left quick-ack mode by itself.
        #[cfg(target_os = "linux")]
        socket2::SockRef::from(client.inner())
            .set_tcp_quickack(false)
            .unwrap();
        server.write_all(b"<iq/>").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"<iq/>");
        #[cfg(target_os = "linux")]
        assert!(
            socket2::SockRef::from(client.inner())
                .tcp_quickack()
                .unwrap()
        );
        client.write_all(b"<r/>").await.unwrap();
        let mut back = [0u8; 4];
        server.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"<r/>");
    }
}
