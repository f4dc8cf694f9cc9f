//! `cargo uk serve`: the gateway. An HTTP/1.1 server on loopback (hyper on tokio) that
//! routes each request, by `functions.json`, to its function's VM on the project's KVM
//! monitor and answers with the function's response.
//!
//! - Modes per function ([`runtime`]): `fresh`, `snapshot` (the default), `warm`.
//! - Limits: the body at most the function's `max_request` (413), its timeout (the VM is
//!   stopped, 504), `concurrency` VMs at once per function with `queue` more waiting
//!   (beyond that 503 with `Retry-After`), a guest that panics or faults is a 502 with
//!   its report in the log.
//! - Scale to zero: a function without requests for `idle` loses its snapshot and VMs;
//!   the next request takes them again.
//! - Graceful shutdown on SIGINT or SIGTERM: no new connection, requests in flight
//!   answered, then every VM and snapshot file dropped.
//! - One log line per request on stderr, and `GET /metrics` ([`metrics`]).
//!
//! The KVM work runs on tokio's blocking threads; each VM's vCPU runs on a confined thread
//! of its own, as every vCPU of the monitor does.

mod metrics;
mod runtime;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::signal::unix::{SignalKind, signal};
use unikernel_abi::function::{decode_response, encode_request};
use unikernel_vmm::CallError;

pub use metrics::{Metrics, Phases};
pub use runtime::FunctionRuntime;

use crate::functions::{Manifest, Mode};
use crate::{Error, Result};

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What `cargo uk serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A crate of functions (built first) or a `functions.json`.
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Every function in this mode instead of its own.
    pub mode: Option<Mode>,
    /// VMs per function at once.
    pub concurrency: usize,
    /// Requests per function waiting for a VM beyond those.
    pub queue: usize,
    /// VMs prepared ahead per `snapshot` function.
    pub pool: usize,
    /// A function idle this long scales to zero.
    pub idle: Duration,
}

/// The routes and their functions.
#[derive(Debug)]
pub struct Gateway {
    routes: BTreeMap<(String, String), Arc<FunctionRuntime>>,
    metrics: Metrics,
    queue: usize,
    concurrency: usize,
}

type Body = Full<Bytes>;

fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The manifest at `path`: a `functions.json`, or the crate's, built now.
fn manifest(path: &Path) -> Result<Manifest> {
    if path.extension().is_some_and(|ext| ext == "json") {
        return Manifest::read(path);
    }
    let built = crate::functions::build(path, true, &mut |line| eprintln!("{line}"))?;
    Ok(built.manifest)
}

impl Gateway {
    /// A gateway for every function of `manifest`.
    pub fn new(manifest: &Manifest, options: &ServeOptions) -> Result<Gateway> {
        if let Err(err) = unikernel_vmm::open_kvm() {
            return Err(Error::new(format!(
                "the gateway needs KVM: functions answer through the request channel of the project's monitor, which QEMU does not have ({err})"
            )));
        }
        let mut routes = BTreeMap::new();
        for (name, function) in &manifest.functions {
            let mode = options.mode.unwrap_or(function.mode);
            let runtime = FunctionRuntime::new(
                name.clone(),
                function.clone(),
                mode,
                options.concurrency.max(1),
                options.pool,
            )
            .map_err(|err| Error::new(format!("function `{name}`: {err}")))?;
            routes.insert(
                (function.method.clone(), function.path.clone()),
                Arc::new(runtime),
            );
        }
        Ok(Gateway {
            routes,
            metrics: Metrics::default(),
            queue: options.queue,
            concurrency: options.concurrency.max(1),
        })
    }

    /// The functions.
    pub fn functions(&self) -> impl Iterator<Item = &Arc<FunctionRuntime>> {
        self.routes.values()
    }

    /// Answers one HTTP request.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let start = Instant::now();
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        if method == "GET" && path == "/metrics" {
            let mut response = text(StatusCode::OK, self.metrics.text());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            return response;
        }
        let Some(runtime) = self.routes.get(&(method.clone(), path.clone())).cloned() else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no function at {method} {path}\n"),
            );
        };
        let (response, phases) = self.call(&runtime, request).await;
        let phases = Phases {
            total: start.elapsed(),
            ..phases
        };
        let status = response.status().as_u16();
        let ms = |time: Option<Duration>| match time {
            Some(time) => format!("{:.2} ms", time.as_secs_f64() * 1e3),
            None => "-".into(),
        };
        eprintln!(
            "serve: {} {} {status} setup {} guest {} total {}",
            runtime.name,
            runtime.mode,
            ms(phases.setup),
            ms(phases.guest),
            ms(Some(phases.total)),
        );
        self.metrics
            .record(&runtime.name, &runtime.mode.to_string(), status, phases);
        response
    }

    async fn call(
        &self,
        runtime: &Arc<FunctionRuntime>,
        request: Request<Incoming>,
    ) -> (Response<Body>, Phases) {
        let max = runtime.function.max_request;
        let too_large = || {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the function takes requests of at most {max} bytes\n"),
            )
        };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max) {
            return (too_large(), Phases::default());
        }
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, max as usize).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return (too_large(), Phases::default()),
        };
        let target = parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |target| target.as_str());
        let headers: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        let mut encoded = vec![0; max as usize];
        let length = match encode_request(
            &mut encoded,
            parts.method.as_str(),
            target,
            headers.iter().copied(),
            &body,
        ) {
            Ok(length) => length,
            Err(_) => return (too_large(), Phases::default()),
        };
        encoded.truncate(length);

        // Admission: `concurrency` running and `queue` waiting, no more.
        let admitted = runtime.admitted.fetch_add(1, Ordering::SeqCst);
        let _admission = Admission(runtime);
        if admitted >= self.concurrency + self.queue {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("`{}` is at its limit; try again\n", runtime.name),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return (response, Phases::default());
        }
        let Ok(_slot) = runtime.slots.acquire().await else {
            return (
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
                Phases::default(),
            );
        };
        let worker = Arc::clone(runtime);
        let outcome = tokio::task::spawn_blocking(move || worker.handle(&encoded)).await;
        if runtime.mode == Mode::Snapshot {
            // The next restores' VMs, prepared after this response, not before it.
            let worker = Arc::clone(runtime);
            tokio::task::spawn_blocking(move || worker.refill());
        }
        let mut outcome = match outcome {
            Ok(outcome) => outcome,
            Err(_) => {
                return (
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the gateway failed (a bug)\n",
                    ),
                    Phases::default(),
                );
            }
        };
        if let Some(vm) = outcome.finished_vm.take() {
            // Torn down off the response's path.
            tokio::task::spawn_blocking(move || drop(vm));
        }
        let mut phases = Phases {
            setup: outcome.setup,
            ..Phases::default()
        };
        let response = match outcome.result {
            Ok(reply) => {
                phases.guest = Some(reply.guest);
                response_of(&runtime.name, &reply.response)
            }
            Err(CallError::Timeout(after)) => {
                eprintln!("serve: {} stopped after {after:?}", runtime.name);
                text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("`{}` did not answer in time\n", runtime.name),
                )
            }
            Err(CallError::TooLarge { .. }) => too_large(),
            Err(err @ (CallError::Guest { .. } | CallError::Protocol(_))) => {
                eprintln!("serve: {}: {err}", runtime.name);
                text(
                    StatusCode::BAD_GATEWAY,
                    format!("`{}` failed\n", runtime.name),
                )
            }
            Err(CallError::Monitor(err)) => {
                eprintln!("serve: {}: {err}", runtime.name);
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("`{}` could not be started\n", runtime.name),
                )
            }
        };
        (response, phases)
    }
}

/// Counts a request out of its function's admission when it ends.
struct Admission<'a>(&'a FunctionRuntime);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The HTTP response of a function's reply; a reply that is not a valid response is a 502.
fn response_of(name: &str, reply: &[u8]) -> Response<Body> {
    let bad = |what: String| {
        eprintln!("serve: {name}: its response {what}");
        text(StatusCode::BAD_GATEWAY, format!("`{name}` failed\n"))
    };
    let decoded = match decode_response(reply) {
        Ok(decoded) => decoded,
        Err(err) => return bad(format!("is malformed: {err}")),
    };
    let Ok(status) = StatusCode::from_u16(decoded.status) else {
        return bad(format!("has status {}", decoded.status));
    };
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(decoded.body)));
    *response.status_mut() = status;
    for (name, value) in decoded.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            (Ok(name), Ok(value)) => {
                response.headers_mut().append(name, value);
            }
            _ => return bad(format!("has an invalid header `{name}`")),
        }
    }
    response
}

/// Runs the gateway until SIGINT or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    let manifest = manifest(&options.path)?;
    let gateway = Arc::new(Gateway::new(&manifest, &options)?);
    let listener = std::net::TcpListener::bind(options.listen)
        .map_err(|err| Error::new(format!("cannot listen on {}: {err}", options.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|err| Error::new(format!("the listening address: {err}")))?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gateway")
        .build()
        .map_err(|err| Error::new(format!("starting the server's threads: {err}")))?;
    let result = tokio.block_on(run(Arc::clone(&gateway), listener, address, options.idle));
    // Requests in flight were answered; blocking work (pool refills) ends here.
    tokio.shutdown_timeout(DRAIN_TIMEOUT);
    for function in gateway.functions() {
        function.stop();
    }
    eprintln!("serve: stopped");
    result
}

async fn run(
    gateway: Arc<Gateway>,
    listener: std::net::TcpListener,
    address: SocketAddr,
    idle: Duration,
) -> Result<()> {
    let io = |err: std::io::Error| Error::new(format!("the gateway: {err}"));
    listener.set_nonblocking(true).map_err(io)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
    // Snapshots are taken before the first request, off its path.
    for function in gateway.functions() {
        if function.mode == Mode::Snapshot {
            let function = Arc::clone(function);
            tokio::task::spawn_blocking(move || {
                let _ = function.handle_warmup();
            });
        }
    }
    for function in gateway.functions() {
        eprintln!(
            "serve: {} {} {} -> {} ({} MiB, {} ms, {})",
            function.name,
            function.function.method,
            function.function.path,
            function.function.image.display(),
            function.function.memory_mib,
            function.function.timeout_ms,
            function.mode
        );
    }
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut idle_check = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let gateway = Arc::clone(&gateway);
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let gateway = Arc::clone(&gateway);
                        async move { Ok::<_, Infallible>(gateway.handle(request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stop.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = idle_check.tick() => {
                let gateway = Arc::clone(&gateway);
                tokio::task::spawn_blocking(move || {
                    for function in gateway.functions() {
                        if function.scale_to_zero_if_idle(idle) {
                            eprintln!("serve: {} scaled to zero after {idle:?} idle", function.name);
                            gateway.metrics.scaled_to_zero(&function.name);
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    eprintln!("serve: shutting down: finishing requests in flight");
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}
