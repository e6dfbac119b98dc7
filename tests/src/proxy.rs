//! A TCP proxy on loopback that a test can cut and restore, to make a database server
//! vanish for one daemon without stopping it for every other test sharing it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections from a local port to `target` until stopped.
pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Starts on a free port.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let proxy = TcpProxy { port, target, tasks: Arc::new(Mutex::new(Vec::new())) };
        proxy.serve(listener);
        Ok(proxy)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(pipe);
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(accept);
        }
    }

    /// Stops listening and cuts every open connection, as a server that went down.
    pub fn stop(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
    }

    /// Listens again on the same port (the server came back).
    ///
    /// # Errors
    /// The port cannot be bound again.
    pub async fn restart(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
