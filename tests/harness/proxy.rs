//! A TCP proxy the test controls: pass bytes through, stall them, or cut every connection, now
//! or when a given number of bytes has gone upstream (mid-upload, deterministically).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward bytes both ways.
    Pass,
    /// Keep connections open but forward nothing (a hung server).
    Stall,
    /// Close every connection and refuse new ones (a server that is down).
    Down,
}

#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    wire: Arc<Tripwire>,
    task: JoinHandle<()>,
}

/// Bytes sent upstream (client to server) since the proxy started, and a mode to switch to once
/// they pass a mark.
#[derive(Debug, Default)]
struct Tripwire {
    upstream: AtomicU64,
    armed: Mutex<Option<(u64, Mode)>>,
}

impl Tripwire {
    fn sent(&self, n: usize, mode: &watch::Sender<Mode>) {
        let total = self.upstream.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        let mut armed = self.armed.lock().expect("tripwire lock");
        if let Some((mark, then)) = *armed
            && total >= mark
        {
            *armed = None;
            mode.send_replace(then);
        }
    }
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (random port) and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (tx, _) = watch::channel(Mode::Pass);
        let mode = Arc::new(tx);
        let wire = Arc::new(Tripwire::default());
        let m = mode.clone();
        let w = wire.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if *m.borrow() == Mode::Down {
                    drop(client);
                    continue;
                }
                let rx = m.subscribe();
                let (m, w) = (m.clone(), w.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, rx, (m, w)).await;
                    }
                });
            }
        });
        Self { addr, mode, wire, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Bytes sent upstream so far.
    pub fn upstream_bytes(&self) -> u64 {
        self.wire.upstream.load(Ordering::SeqCst)
    }

    /// Switches to `then` once `more` further bytes have gone upstream (the chunk that crosses
    /// the mark is not forwarded).
    pub fn trip_after(&self, more: u64, then: Mode) {
        let mark = self.upstream_bytes() + more;
        *self.wire.armed.lock().expect("tripwire lock") = Some((mark, then));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.set(Mode::Down);
        self.task.abort();
    }
}

type Upstream = (Arc<watch::Sender<Mode>>, Arc<Tripwire>);

async fn relay(client: TcpStream, server: TcpStream, rx: watch::Receiver<Mode>, up: Upstream) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let a = tokio::spawn(pump(cr, sw, rx.clone(), Some(up)));
    let b = tokio::spawn(pump(sr, cw, rx, None));
    let _ = tokio::join!(a, b);
}

/// Copies one direction, obeying the mode before every chunk; upstream chunks count towards the
/// tripwire.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<Mode>,
    up: Option<Upstream>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = wait_for(&mut rx, Mode::Down) => return,
        };
        if let Some((mode, wire)) = &up {
            wire.sent(n, mode);
        }
        // Hold the chunk while stalled; drop the connection if the proxy goes down meanwhile.
        loop {
            let mode = *rx.borrow_and_update();
            match mode {
                Mode::Pass => break,
                Mode::Down => return,
                Mode::Stall => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_for(rx: &mut watch::Receiver<Mode>, want: Mode) {
    loop {
        if *rx.borrow_and_update() == want {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
