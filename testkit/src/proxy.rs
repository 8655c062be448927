//! A TCP fault proxy for the chaos suite (no Toxiproxy server can be installed here).
//!
//! Sits between a service and one dependency (Postgres, SQS, SMTP). The harness flips its
//! [`Fault`] in process; connections check it on every chunk, so a fault hits traffic
//! already in flight, not only new connections.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward untouched.
    None,
    /// Delay every chunk in both directions.
    Latency(Duration),
    /// Reset every open connection now and every new one at once.
    Reset,
    /// Accept and swallow: nothing is forwarded and nothing answers.
    Blackhole,
    /// Refuse: new connections are closed immediately (with a reset), open ones too.
    Refuse,
}

/// A running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, watcher) = watch::channel(Fault::None);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(handle(client, upstream, watcher.clone()));
            }
        });
        Ok(Self { addr, fault, task })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes the fault for all traffic from now on.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reset(stream: TcpStream) {
    // Linger 0 turns the close into an RST: the peer sees "connection reset". (The
    // deprecation warns that a non-zero linger blocks on drop; zero does not.)
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn handle(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let current = *fault.borrow_and_update();
    match current {
        Fault::Reset | Fault::Refuse => return reset(client),
        Fault::Blackhole => {
            // Hold the connection silently until the fault changes, then drop it.
            let _ = fault.changed().await;
            return reset(client);
        }
        Fault::None | Fault::Latency(_) => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let fault = Arc::new(fault);
    let up = pump(client_read, server_write, fault.as_ref().clone());
    let down = pump(server_read, client_write, fault.as_ref().clone());
    // When either direction ends (or a fault kills it), the connection is over.
    tokio::select! {
        () = up => {},
        () = down => {},
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    // Once bytes were swallowed the stream is corrupt: end it when the fault lifts.
    let mut swallowed = false;
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = fault.changed() => {
                if changed.is_err() || swallowed || matches!(*fault.borrow(), Fault::Reset | Fault::Refuse) {
                    return;
                }
                continue;
            }
        };
        let current = *fault.borrow();
        match current {
            Fault::Reset | Fault::Refuse => return,
            Fault::Blackhole => {
                swallowed = true;
                continue;
            }
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::None => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_then_refuses_then_delays() {
        let proxy = FaultProxy::start(echo_server().await).await.expect("proxy");
        assert_eq!(roundtrip(proxy.port()).await.expect("forwarded"), b"ping");
        proxy.set(Fault::Refuse);
        assert!(roundtrip(proxy.port()).await.is_err());
        proxy.set(Fault::Latency(Duration::from_millis(200)));
        let started = std::time::Instant::now();
        assert_eq!(roundtrip(proxy.port()).await.expect("forwarded"), b"ping");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn a_blackhole_answers_nothing() {
        let proxy = FaultProxy::start(echo_server().await).await.expect("proxy");
        proxy.set(Fault::Blackhole);
        let result =
            tokio::time::timeout(Duration::from_millis(300), roundtrip(proxy.port())).await;
        assert!(result.is_err(), "no answer through a blackhole");
    }
}
