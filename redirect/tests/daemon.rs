//! The daemon as a process: its command line, start-up on a device the operator made, and
//! shutdown on SIGTERM. The packet behaviour is in `second_chance.rs`.

mod support;

use std::process::Command;
use support::Daemon;
use testkit::{Netns, require_root, unique_name};

fn glb_redirect(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_glb-redirect")).args(args).output().expect("run glb-redirect")
}

#[test]
fn help_explains_and_bad_arguments_fail() {
    let help = glb_redirect(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in
        ["--tun", "--vip", "--listen", "--workers", "--stats-listen", "0.0.0.0:19523", "CAP_NET_ADMIN"]
    {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    for bad in [&["--listen", "[::]:19523"][..], &["--workers", "0"], &["--vip", "glb.example"], &["--nope"]]
    {
        let out = glb_redirect(bad);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} explains nothing");
    }
}

#[test]
fn sigterm_stops_cleanly_and_takes_its_device_along() {
    require_root!();
    let ns = Netns::new(&unique_name("glbrd-s"));
    let mut daemon = Daemon::start(&ns, &["--vip", "192.0.2.10", "--vip", "2001:db8:10::10"]);
    daemon.wait_ready(&ns);
    let addresses = ns.ip(&["-o", "addr", "show", "dev", "glbtun0"]);
    assert!(addresses.contains("192.0.2.10/32") && addresses.contains("2001:db8:10::10/128"), "{addresses}");
    assert!(ns.ip(&["link", "show", "dev", "glbtun0"]).contains(",UP"), "device brought up");
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(daemon.log_text().contains("SIGTERM: stopping"));
    let gone =
        Command::new("ip").args(["-n", ns.name(), "link", "show", "dev", "glbtun0"]).output().expect("ip");
    assert!(!gone.status.success(), "the device it created outlived it");
}

/// Without --vip an existing device is used as it is: no address added, state unchanged; a
/// single-queue device is shared by the workers.
#[test]
fn attaches_to_the_operators_device_without_changing_it() {
    require_root!();
    for multi_queue in [true, false] {
        let ns = Netns::new(&unique_name("glbrd-a"));
        let mut create = vec!["tuntap", "add", "dev", "glbtun0", "mode", "tun"];
        if multi_queue {
            create.push("multi_queue");
        }
        ns.ip(&create);
        ns.ip(&["addr", "add", "192.0.2.10/32", "dev", "glbtun0"]);
        let before =
            (ns.ip(&["-o", "addr", "show", "dev", "glbtun0"]), ns.ip(&["link", "show", "dev", "glbtun0"]));
        let mut daemon = Daemon::start(&ns, &["--workers", "2"]);
        daemon.wait_ready(&ns);
        let after =
            (ns.ip(&["-o", "addr", "show", "dev", "glbtun0"]), ns.ip(&["link", "show", "dev", "glbtun0"]));
        assert_eq!(before.0, after.0, "addresses changed");
        assert!(!after.1.contains(",UP"), "brought up without --vip: {}", after.1);
        assert_eq!(daemon.log_text().contains("single-queue"), !multi_queue, "{}", daemon.log_text());
        assert!(daemon.terminate().success());
        assert!(ns.ip(&["link", "show", "dev", "glbtun0"]).contains("glbtun0"), "a persistent device stays");
    }
}
