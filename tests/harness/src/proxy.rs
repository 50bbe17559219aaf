//! A TCP proxy on loopback in front of a broker, to take the broker away from its clients without
//! stopping it.
//!
//! [`Proxy::start`] listens on a free loopback port and forwards each connection to the upstream
//! address, with two threads per connection (one each way). [`Proxy::cut`] closes every open
//! connection and, until [`Proxy::restore`], closes each new one as soon as it is accepted. To a
//! client the broker is gone (its connections drop, reconnecting fails); the broker itself runs on,
//! with its logs, group sessions that expire and transactions that time out, as in a network
//! outage.
//!
//! A broker tells its clients where to connect in its Metadata and FindCoordinator responses, so
//! for every connection to go through the proxy the broker must advertise the proxy's address
//! ([`crate::broker::Broker::start_nisshi_behind_proxy`] starts nisshi so).

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::Error;

/// How long the proxy waits for the upstream broker to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback TCP proxy that can cut every connection through it (see the module documentation).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// Whether the proxy is stopping (it is being dropped).
    stop: AtomicBool,
    /// The connections open now, both ends of each, by number; `None` while cut. One lock decides
    /// between a cut and a connection being added, so none slips through a cut.
    open: Mutex<Option<HashMap<u64, (TcpStream, TcpStream)>>>,
    next: AtomicU64,
    /// Connections closed at once because the proxy was cut.
    refused: AtomicU64,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, Option<HashMap<u64, (TcpStream, TcpStream)>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes connection `id` (both ends), if it is still open.
    fn close(&self, id: u64) {
        if let Some((client, upstream)) = self.open().as_mut().and_then(|open| open.remove(&id)) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

impl Proxy {
    /// Starts a proxy on a free loopback port that forwards connections to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Proxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::FreePort { source })?;
        let addr = listener.local_addr().map_err(|source| Error::FreePort { source })?;
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            open: Mutex::new(Some(HashMap::new())),
            next: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let mine = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept(&listener, &mine))
            .map_err(|source| Error::Spawn {
                program: "the proxy's accept thread".into(),
                source,
            })?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream broker's address.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Takes the broker away: closes every open connection, and each new one as soon as it is
    /// accepted, until [`Proxy::restore`]. Returns how many connections were open.
    pub fn cut(&self) -> usize {
        let open = self.shared.open().take().unwrap_or_default();
        for (client, upstream) in open.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        open.len()
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.open().get_or_insert_with(HashMap::new);
    }

    /// Whether it is cut now.
    pub fn is_cut(&self) -> bool {
        self.shared.open().is_none()
    }

    /// How many connections were closed at once because it was cut.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accept thread, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until the proxy stops, forwarding each (or closing it while cut).
fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.open().is_none() {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // The connection to the broker is made before the lock is taken again; a cut meanwhile
        // closes both ends below.
        let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT) else {
            continue;
        };
        if let Err(e) = forward(client, upstream, shared) {
            // A test that depends on the proxy sees its clients fail to connect, and this says why.
            eprintln!("proxy to {}: cannot forward a connection: {e}", shared.upstream);
        }
    }
}

/// Registers a connection and starts its two forwarding threads.
fn forward(client: TcpStream, upstream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let ends = (client.try_clone()?, upstream.try_clone()?);
    let (client_back, upstream_back) = (client.try_clone()?, upstream.try_clone()?);
    {
        let mut open = shared.open();
        let Some(open) = open.as_mut() else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            return Ok(());
        };
        open.insert(id, ends);
    }
    pump(id, client, upstream, shared.clone())?;
    pump(id, upstream_back, client_back, shared.clone())?;
    Ok(())
}

/// Copies `from` to `to` on a thread of its own until either side closes, then closes both ends of
/// the connection.
fn pump(id: u64, mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    thread::Builder::new()
        .name(format!("proxy-conn-{id}"))
        .spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            shared.close(id);
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// An upstream that echoes what it reads, on every connection.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an echo server");
        let addr = listener.local_addr().expect("its address");
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut read = conn.try_clone().expect("clone");
                    let mut write = conn;
                    let _ = io::copy(&mut read, &mut write);
                });
            }
        });
        addr
    }

    fn round_trip(stream: &mut TcpStream, text: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(text)?;
        let mut got = vec![0; text.len()];
        stream.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn a_cut_closes_open_connections_and_refuses_new_ones_until_restored() {
        let proxy = Proxy::start(echo()).expect("start the proxy");
        let mut before = TcpStream::connect(proxy.addr()).expect("connect");
        before.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert_eq!(round_trip(&mut before, b"hello").expect("echo"), b"hello");

        assert_eq!(proxy.cut(), 1);
        assert!(proxy.is_cut());
        // The open connection is closed: a read ends (or fails) at once.
        let mut buf = [0; 1];
        assert!(matches!(before.read(&mut buf), Ok(0) | Err(_)));
        // A new one is accepted by the kernel, then closed without an answer.
        let mut during = TcpStream::connect(proxy.addr()).expect("connect while cut");
        during.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert!(round_trip(&mut during, b"lost").is_err());

        proxy.restore();
        let mut after = TcpStream::connect(proxy.addr()).expect("connect");
        after.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert_eq!(round_trip(&mut after, b"again").expect("echo"), b"again");
        assert!(proxy.refused() >= 1);
    }
}
