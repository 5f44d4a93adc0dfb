//! The two socket facts the TFTP server needs that std does not expose:
//! the local address a request arrived on (IP_PKTINFO / IPV6_RECVPKTINFO), so the
//! transfer replies from that exact address even when listening on 0.0.0.0 of a
//! multi-homed host (boot ROMs drop replies from any other address); and the path
//! MTU of a connected socket (IP_MTU / IPV6_MTU), to clamp blksize so DATA packets
//! are never fragmented.
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Asks the kernel to report each datagram's destination address.
pub(crate) fn enable_pktinfo(sock: &UdpSocket) -> io::Result<()> {
    match sock.local_addr()? {
        SocketAddr::V4(_) => setsockopt_int(sock, libc::IPPROTO_IP, libc::IP_PKTINFO, 1),
        SocketAddr::V6(_) => {
            setsockopt_int(sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            // A dual-stack socket reports IPv4 requests through IP_PKTINFO; a
            // v6-only socket refuses the option, which is fine.
            let _ = setsockopt_int(sock, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
            Ok(())
        }
    }
}

/// IPv4-mapped IPv6 addresses as plain IPv4, so a transfer socket for an IPv4
/// client on a dual-stack listener can be an IPv4 socket.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn setsockopt_int(sock: &UdpSocket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the fd is open for the call's duration, and the pointer/length
    // describe a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One received datagram: length, sender, and the local address it was sent to.
pub(crate) struct Received {
    pub len: usize,
    pub peer: SocketAddr,
    pub local: Option<IpAddr>,
}

/// `recvmsg` with the PKTINFO control message decoded.
pub(crate) fn recv_with_local(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid bit pattern for these plain C structs.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = [0u64; 32]; // u64 for cmsghdr alignment
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>() as _;
    // SAFETY: every pointer in msg refers to a live local buffer of the stated size.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = sockaddr_to_std(&addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    // SAFETY: msg was filled in by recvmsg; the CMSG macros walk within msg_controllen.
    let local = unsafe { local_from_control(&msg) };
    Ok(Received {
        len: n as usize,
        peer,
        local,
    })
}

/// # Safety
/// `msg` must have been filled in by a successful `recvmsg`.
unsafe fn local_from_control(msg: &libc::msghdr) -> Option<IpAddr> {
    // SAFETY: guaranteed by the caller; the macros stay inside the control buffer.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            if header.cmsg_level == libc::IPPROTO_IP && header.cmsg_type == libc::IP_PKTINFO {
                let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            if header.cmsg_level == libc::IPPROTO_IPV6 && header.cmsg_type == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
        None
    }
}

fn sockaddr_to_std(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The kernel's path MTU for a connected socket, if it knows one.
pub(crate) fn path_mtu(sock: &UdpSocket) -> Option<u32> {
    let (level, name) = match sock.local_addr().ok()? {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_MTU),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: value and len are live locals of the sizes the kernel is told.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    (rc == 0 && value > 0).then_some(value as u32)
}

/// Largest TFTP payload that fits one unfragmented datagram on `mtu`.
pub(crate) fn blksize_for_mtu(mtu: u32, ipv6: bool) -> u16 {
    let headers = if ipv6 { 40 + 8 + 4 } else { 20 + 8 + 4 };
    mtu.saturating_sub(headers).clamp(8, u32::from(u16::MAX)) as u16
}

/// Sends one datagram per (header, payload) pair on a connected socket with
/// sendmmsg(2): a whole TFTP window in one system call instead of one per block.
pub(crate) fn send_batch(
    sock: &UdpSocket,
    headers: &[[u8; 4]],
    payloads: &[&[u8]],
) -> io::Result<()> {
    let mut iovecs: Vec<[libc::iovec; 2]> = headers
        .iter()
        .zip(payloads)
        .map(|(head, data)| {
            [
                libc::iovec {
                    iov_base: head.as_ptr() as *mut _,
                    iov_len: head.len(),
                },
                libc::iovec {
                    iov_base: data.as_ptr() as *mut _,
                    iov_len: data.len(),
                },
            ]
        })
        .collect();
    let mut sent = 0;
    while sent < iovecs.len() {
        let mut msgs: Vec<libc::mmsghdr> = iovecs[sent..]
            .iter_mut()
            .map(|iov| {
                // SAFETY: all-zero is a valid msghdr; the fields set below point
                // at live iovecs that outlive the call.
                let mut hdr: libc::mmsghdr = unsafe { zeroed() };
                hdr.msg_hdr.msg_iov = iov.as_mut_ptr();
                hdr.msg_hdr.msg_iovlen = 2;
                hdr
            })
            .collect();
        // SAFETY: msgs holds msgs.len() initialised headers whose buffers are
        // borrowed from `headers` and `payloads`, alive for the whole call.
        let n = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as _, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        sent += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pktinfo_reports_the_destination_address() {
        let server = UdpSocket::bind("0.0.0.0:0").unwrap();
        enable_pktinfo(&server).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hi", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        let got = recv_with_local(&server, &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"hi");
        assert_eq!(got.peer, client.local_addr().unwrap());
        assert_eq!(got.local, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn mtu_of_a_connected_socket() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect("127.0.0.1:9").unwrap();
        assert!(path_mtu(&sock).unwrap() >= 1280);
        assert_eq!(blksize_for_mtu(1500, false), 1468);
        assert_eq!(blksize_for_mtu(65536, false), 65504);
    }
}
