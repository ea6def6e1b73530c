//! The tcp check: a connect that completes passes; the connection is closed at once.

use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;

/// Connects to `ip:port` (IPv6 works; GLB formats it without brackets and always fails).
///
/// # Errors
/// The connect error as text.
pub async fn check(ip: IpAddr, port: u16) -> Result<(), String> {
    let addr = SocketAddr::new(ip, port);
    TcpStream::connect(addr).await.map(drop).map_err(|e| format!("connect to {addr}: {e}"))
}
