//! Serving a simulator on a loopback port, with a fault layer in front of every route.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::counters::Counters;
use crate::fault::{FaultRule, Faults, fault_layer};
use crate::limits::{LimitState, ServerLimits, limit_layer};

/// What every simulated route can reach: the counters and the fault plan.
#[derive(Clone, Debug)]
pub struct SimContext {
    /// Per-route and named counters.
    pub counters: Counters,
    /// The fault plan, changeable while the server runs.
    pub faults: Faults,
}

/// A simulated API that [`SimBuilder::serve`] starts: its settings, the routes it serves, and
/// the handle a test keeps to seed, steer and inspect its state while it runs.
///
/// Each simulator (generic, canned, Zefort, Zoho, ChakraHQ, Unicat) implements it, so they all
/// start the same way and share one start-up path.
pub trait Simulator: Sized {
    /// The simulator's settings.
    type Config;

    /// Builds the simulator's state from `cfg`, reporting to `ctx`'s counters, and the routes
    /// that serve it.
    fn build(ctx: SimContext, cfg: Self::Config) -> (Router, Self);
}

/// Configures and starts a simulator.
#[derive(Debug)]
#[must_use]
pub struct SimBuilder {
    name: String,
    seed: u64,
    rules: Vec<FaultRule>,
    addr: SocketAddr,
    limits: Option<ServerLimits>,
}

impl SimBuilder {
    /// A simulator called `name` (for logs and `cargo xtask sim`), on a random loopback port.
    pub fn new(name: impl Into<String>) -> Self {
        SimBuilder {
            name: name.into(),
            seed: 0,
            rules: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: None,
        }
    }

    /// The seed of the fault plan's random choices (same seed, same requests: same faults).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds a fault rule.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Server-side rate and concurrency limits, in front of the fault layer as a vendor's
    /// gateway is: a refused request reaches no route (it is counted under `limits.refused`),
    /// and an injected delay counts as time in flight.
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Binds this address instead of a random loopback port (standalone use).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Binds the address and serves simulator `S` with `cfg`: the one start-up path of every
    /// simulator. Returns the running server and the handle on `S`'s state.
    ///
    /// ```
    /// use vendor_sim::SimBuilder;
    /// use vendor_sim::zoho::{Zoho, ZohoConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let (sim, zoho) = SimBuilder::new("zoho").serve::<Zoho>(ZohoConfig::default()).await?;
    /// println!("serving on {}, {} rows served", sim.base_url(), zoho.rows_served());
    /// sim.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn serve<S: Simulator>(self, cfg: S::Config) -> std::io::Result<(SimHandle, S)> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve_on(listener, cfg)
    }

    /// Serves simulator `S` with `cfg` on an already bound listener.
    pub fn serve_on<S: Simulator>(
        self,
        listener: TcpListener,
        cfg: S::Config,
    ) -> std::io::Result<(SimHandle, S)> {
        self.launch(listener, |ctx| S::build(ctx, cfg))
    }

    /// Binds the address and serves the router that `app` builds (a one-off router; a
    /// [`Simulator`] goes through [`SimBuilder::serve`]).
    pub async fn start(self, app: impl FnOnce(SimContext) -> Router) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(self.addr).await?;
        self.start_on(listener, app)
    }

    /// Serves the router that `app` builds on an already bound listener.
    pub fn start_on(
        self,
        listener: TcpListener,
        app: impl FnOnce(SimContext) -> Router,
    ) -> std::io::Result<SimHandle> {
        let (handle, ()) = self.launch(listener, |ctx| (app(ctx), ()))?;
        Ok(handle)
    }

    /// Builds the context, the routes (and whatever `app` hands back beside them), puts the
    /// fault and limit layers in front and spawns the accept loop.
    fn launch<T>(
        self,
        listener: TcpListener,
        app: impl FnOnce(SimContext) -> (Router, T),
    ) -> std::io::Result<(SimHandle, T)> {
        let addr = listener.local_addr()?;
        let ctx = SimContext {
            counters: Counters::default(),
            faults: Faults::new(self.seed, self.rules),
        };
        let (router, built) = app(ctx.clone());
        let mut router = router.layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            fault_layer,
        ));
        if let Some(limits) = self.limits {
            router = router.layer(axum::middleware::from_fn_with_state(
                LimitState::new(limits, ctx.clone()),
                limit_layer,
            ));
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, stop_rx));
        tracing::debug!(name = %self.name, %addr, "simulator listening");
        let handle = SimHandle {
            name: self.name,
            addr,
            ctx,
            stop: stop_tx,
            task: Some(task),
        };
        Ok((handle, built))
    }
}

/// Asks the connection serving the current request to drop (a reset as the client sees it).
#[derive(Clone)]
pub(crate) struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    pub(crate) fn kill(&self) {
        self.0.notify_one();
    }
}

async fn accept_loop(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop.clone();
        conns.spawn(async move {
            let kill = Arc::new(Notify::new());
            let switch = ConnectionKill(kill.clone());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(switch.clone());
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req.map(Body::new)).await;
                    Ok::<_, Infallible>(match resp {
                        Ok(r) => r,
                        Err(never) => match never {},
                    })
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = kill.notified() => {}
                _ = stop.changed() => {}
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] waits for it.
pub struct SimHandle {
    name: String,
    addr: SocketAddr,
    ctx: SimContext,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The simulator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the base URL to give a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.ctx.counters
    }

    /// The fault plan.
    pub fn faults(&self) -> &Faults {
        &self.ctx.faults
    }

    /// The context shared with the routes.
    pub fn context(&self) -> &SimContext {
        &self.ctx
    }

    /// Stops accepting, closes every connection and waits for the server task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
