//! The demo's synthetic application pods: each serves `/metrics` on its own loopback port
//! with what a web service exports (requests by method, path and code; a latency histogram;
//! CPU and memory), growing with the pod's age. A [`Fleet`] is one cluster's pods, published
//! to the cluster's server through a file-discovery JSON file, and replaces a pod now and
//! then as a rolling deployment would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

struct Pod {
    name: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Pod {
    fn start(name: String, seed: u64) -> Result<Pod, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let born = Instant::now();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::Acquire) {
                    return;
                }
                if let Ok(c) = conn {
                    std::thread::spawn(move || serve(c, born, seed));
                }
            }
        });
        Ok(Pod { name, addr, stop })
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag and closes the port.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answers requests on one keep-alive connection.
fn serve(mut c: TcpStream, born: Instant, seed: u64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        }
        buf.clear();
        let body = exposition(born.elapsed().as_secs_f64(), seed);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if c.write_all(head.as_bytes()).is_err() || c.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// Latency buckets (seconds) and the share of requests at or below each.
const BUCKETS: [(f64, f64); 6] = [
    (0.05, 0.42),
    (0.1, 0.71),
    (0.25, 0.9),
    (0.5, 0.97),
    (1.0, 0.995),
    (2.5, 1.0),
];

fn exposition(age: f64, seed: u64) -> String {
    let load = 1.0 + (seed % 5) as f64 * 0.6;
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP http_requests_total Requests handled, by method, path and status code.\n# TYPE http_requests_total counter\n");
    let routes = [
        ("GET", "/api/items", 6.0),
        ("POST", "/api/orders", 1.5),
        ("GET", "/healthz", 0.2),
    ];
    let mut total = 0.0;
    for (method, path, rate) in routes {
        for (code, share) in [("200", 0.97), ("404", 0.02), ("500", 0.01)] {
            let n = (age * rate * load * share).floor();
            total += n;
            out.push_str(&format!(
                "http_requests_total{{method=\"{method}\",path=\"{path}\",code=\"{code}\"}} {n}\n"
            ));
        }
    }
    out.push_str("# HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n");
    for (le, share) in BUCKETS {
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
            (total * share).floor()
        ));
    }
    out.push_str(&format!(
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}\nhttp_request_duration_seconds_sum {:.3}\nhttp_request_duration_seconds_count {total}\n",
        total * 0.083
    ));
    out.push_str(&format!(
        "# HELP process_cpu_seconds_total CPU time used.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {:.2}\n",
        age * 0.04 * load
    ));
    let memory = 48e6 + load * 8e6 + (age / 30.0).sin() * 3e6;
    out.push_str(&format!(
        "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {memory:.0}\n"
    ));
    out
}

/// One cluster's pods and its file-discovery file.
pub struct Fleet {
    cluster: String,
    seed: u64,
    pods: Vec<Pod>,
    next: u64,
    sd_file: PathBuf,
}

impl Fleet {
    pub fn start(cluster: &str, seed: u64, n: usize, sd_file: &Path) -> Result<Fleet, String> {
        let mut f = Fleet {
            cluster: cluster.to_string(),
            seed,
            pods: Vec::new(),
            next: 0,
            sd_file: sd_file.to_path_buf(),
        };
        for _ in 0..n {
            f.add()?;
        }
        f.publish()?;
        Ok(f)
    }

    fn add(&mut self) -> Result<(), String> {
        let name = format!("shop-{}-{:04x}", self.cluster, self.next * 7919 + self.seed);
        self.next += 1;
        let pod = Pod::start(name, self.seed * 31 + self.next)?;
        self.pods.push(pod);
        Ok(())
    }

    /// A rolling update: the oldest pod goes away, a new one comes.
    pub fn replace_one(&mut self) -> Result<(), String> {
        if !self.pods.is_empty() {
            self.pods.remove(0);
        }
        self.add()?;
        self.publish()
    }

    /// Writes the file-discovery file (atomically: a temporary file renamed over it).
    fn publish(&self) -> Result<(), String> {
        let groups: Vec<String> = self
            .pods
            .iter()
            .map(|p| {
                format!(
                    "  {{\"targets\": [\"{}\"], \"labels\": {{\"namespace\": \"shop\", \"pod\": \"{}\"}}}}",
                    p.addr, p.name
                )
            })
            .collect();
        let text = format!("[\n{}\n]\n", groups.join(",\n"));
        let tmp = self.sd_file.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.sd_file).map_err(|e| format!("{}: {e}", self.sd_file.display()))
    }
}
