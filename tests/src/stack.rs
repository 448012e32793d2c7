//! A stand-in of the MosAIc stack on the private Docker Engine.
//!
//! Each service of the handbook's stack (npm, postgres, mariadb, gitea,
//! bookstack, woodpecker, redis, mcp, portainer) becomes one small busybox
//! container, created through bollard as `docker compose` would: named
//! `{project}-{service}-1`, with the compose labels
//! (`com.docker.compose.project`, `…service`, `…container-number`,
//! `…depends_on` in compose v2's `svc:condition:required` format), on the
//! host network. Every container runs the same fixed script ([`SCRIPT`]): it
//! prints `"<service> starting"`, serves `/healthz` with busybox `httpd` on
//! its own loopback port (`PORT` in its environment, never interpolated into
//! the script), and prints a heartbeat line every few seconds. It exits at
//! once on SIGTERM, so stops do not wait for the grace period.
//!
//! [`compose_yaml`] renders the docker-compose file of the same stack (the
//! handbook's images, ports as `127.0.0.1:PORT:PORT`, volumes, `depends_on`
//! in short and long syntax, `opsdeck.*` labels), for tests to import with
//! the fixture's project name.
//!
//! Every [`Stack`] has a unique project (`mosaic-<random>`), so tests sharing
//! the engine never see each other's containers as their own; its containers
//! are removed when it is dropped (best effort: the engine's own shutdown
//! removes whatever is left).

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use bollard::Docker;

use crate::dockerd::PrivateDockerd;
use crate::proc::free_port;

/// The busybox image every stand-in container runs (the tag `docker.rs`
/// builds too: built once per engine).
pub const IMAGE: &str = "opsdeck-test/busybox:1";

/// The environment variable of gitea's container that looks secret, and its
/// value: inspect must show `***` instead.
pub const SECRET_ENV: &str = "GITEA__security__SECRET_KEY";
pub const SECRET_VALUE: &str = "supersecret";

/// The one script every service container runs (a constant: the service's
/// name and port come from the environment).
pub const SCRIPT: &str = r#"trap 'exit 0' TERM INT
echo "$SERVICE starting"
mkdir -p /www && echo "$SERVICE ok" > /www/healthz
httpd -f -p "127.0.0.1:$PORT" -h /www &
while :; do
  sleep 5 & wait $!
  echo "$SERVICE heartbeat"
done"#;

/// The script of the crashing service: prints a line and exits 1 (its
/// restart policy is on-failure, so the engine restarts it, counting).
pub const CRASH_SCRIPT: &str = r#"echo "$SERVICE starting"; echo "$SERVICE crashing" >&2; exit 1"#;

/// One service of a stand-in stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: &'static str,
    /// The image the compose file names (the container runs [`IMAGE`]).
    pub image: &'static str,
    pub requires: &'static [&'static str],
    /// `opsdeck.tier` label; `None` leaves the tier to Opsdeck's guess.
    pub tier: Option<&'static str>,
    /// `opsdeck.description` label.
    pub description: &'static str,
    /// `opsdeck.docs` label.
    pub docs: Option<&'static str>,
}

const fn svc(
    name: &'static str,
    image: &'static str,
    requires: &'static [&'static str],
    tier: Option<&'static str>,
    description: &'static str,
) -> ServiceSpec {
    ServiceSpec {
        name,
        image,
        requires,
        tier,
        description,
        docs: None,
    }
}

/// The MosAIc stack, as in the handbook. postgres and redis carry no
/// `opsdeck.tier` label: Opsdeck guesses critical and support from the image.
pub const MOSAIC: &[ServiceSpec] = &[
    svc(
        "npm",
        "jc21/nginx-proxy-manager:2.11",
        &[],
        Some("critical"),
        "Nginx Proxy Manager: TLS and routing for every service",
    ),
    svc(
        "postgres",
        "postgres:16",
        &[],
        None,
        "PostgreSQL for woodpecker",
    ),
    svc(
        "mariadb",
        "mariadb:11",
        &[],
        Some("critical"),
        "MariaDB for gitea and bookstack",
    ),
    ServiceSpec {
        name: "gitea",
        image: "gitea/gitea:1.21",
        requires: &["mariadb", "redis"],
        tier: Some("application"),
        description: "Git hosting for the team",
        docs: Some("https://docs.gitea.com"),
    },
    svc(
        "bookstack",
        "lscr.io/linuxserver/bookstack:23.12",
        &["mariadb"],
        Some("application"),
        "BookStack wiki with the handbook",
    ),
    svc(
        "woodpecker",
        "woodpeckerci/woodpecker-server:2",
        &["postgres", "gitea"],
        Some("application"),
        "Woodpecker CI for the gitea repositories",
    ),
    svc("redis", "redis:7", &[], None, "Redis cache and queues"),
    svc(
        "mcp",
        "ghcr.io/mosaic/mcp-server:1",
        &["redis"],
        Some("support"),
        "MCP server for the assistants",
    ),
    svc(
        "portainer",
        "portainer/portainer-ce:2.19",
        &[],
        Some("support"),
        "Portainer, the Docker admin UI",
    ),
];

/// A small second project (different service names, so it can share an
/// inventory with MosAIc): `docs` requires `search`.
pub const DOCS: &[ServiceSpec] = &[
    svc(
        "docs",
        "ghcr.io/mosaic/docs:1",
        &["search"],
        Some("application"),
        "Documentation site",
    ),
    svc(
        "search",
        "getmeili/meilisearch:1.6",
        &[],
        Some("support"),
        "Search index for the docs",
    ),
];

/// Another small project for tests that need two: `shop` requires `shopdb`.
pub const SHOP: &[ServiceSpec] = &[
    svc(
        "shop",
        "ghcr.io/mosaic/shop:3",
        &["shopdb"],
        Some("application"),
        "Web shop",
    ),
    svc(
        "shopdb",
        "postgres:16",
        &[],
        Some("critical"),
        "Database of the shop",
    ),
];

/// The compose file of a stack. `ports` gives each service's loopback port
/// (published as `127.0.0.1:PORT:PORT`); services without one publish none.
///
/// Uses both `depends_on` syntaxes (short list for one dependency or two,
/// long mapping for woodpecker), named and bind volumes, label maps.
pub fn compose_yaml(services: &[ServiceSpec], ports: &BTreeMap<String, u16>) -> String {
    let mut out = String::from(
        "# MosAIc stand-in: the handbook's stack (images as in production)\n\
         name: mosaic\n\
         services:\n",
    );
    for s in services {
        out.push_str(&format!("  {}:\n    image: {}\n", s.name, s.image));
        if let Some(p) = ports.get(s.name) {
            out.push_str(&format!("    ports:\n      - \"127.0.0.1:{p}:{p}\"\n"));
        }
        out.push_str(&format!(
            "    volumes:\n      - {n}_data:/data\n      - ./{n}/conf:/etc/{n}:ro\n",
            n = s.name
        ));
        match s.requires {
            [] => {}
            deps if s.name == "woodpecker" => {
                out.push_str("    depends_on:\n");
                for d in deps {
                    out.push_str(&format!(
                        "      {d}:\n        condition: service_started\n        restart: true\n"
                    ));
                }
            }
            deps => out.push_str(&format!("    depends_on: [{}]\n", deps.join(", "))),
        }
        out.push_str(&format!(
            "    labels:\n      com.mosaic.stack: core\n      opsdeck.description: \"{}\"\n",
            s.description
        ));
        if let Some(t) = s.tier {
            out.push_str(&format!("      opsdeck.tier: {t}\n"));
        }
        if let Some(d) = s.docs {
            out.push_str(&format!("      opsdeck.docs: {d}\n"));
        }
    }
    out.push_str("volumes:\n");
    for s in services {
        out.push_str(&format!("  {}_data: {{}}\n", s.name));
    }
    out
}

/// The MosAIc compose file with fixed ports (for tests without an engine).
pub fn mosaic_compose() -> String {
    let ports = MOSAIC
        .iter()
        .zip(18_001u16..)
        .map(|(s, p)| (s.name.to_owned(), p))
        .collect();
    compose_yaml(MOSAIC, &ports)
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A project name no other test of any process uses: `<prefix>-<random>`.
pub fn unique_project(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mix = (u64::from(std::process::id()) << 32)
        ^ u64::from(nanos)
        ^ (u64::from(NEXT.fetch_add(1, Ordering::SeqCst)) << 20);
    format!("{prefix}-{:x}", mix & 0xff_ffff_ffff)
}

/// A stand-in stack running on the private engine.
pub struct Stack {
    engine: PrivateDockerd,
    docker: Docker,
    pub project: String,
    pub services: Vec<ServiceSpec>,
    /// Loopback port of each service's `/healthz`.
    pub ports: BTreeMap<String, u16>,
    /// Names of every container this stack created (removed on drop).
    containers: Vec<String>,
}

impl Stack {
    /// Brings up MosAIc as project `mosaic-<random>` and waits until every
    /// service answers on `/healthz`.
    pub async fn mosaic(engine: &PrivateDockerd) -> anyhow::Result<Stack> {
        Self::up(engine, "mosaic", MOSAIC).await
    }

    /// Brings up `services` as project `<prefix>-<random>`: builds the image
    /// if needed, creates and starts one container per service, and waits
    /// (up to 60 s) until each answers on `/healthz`.
    pub async fn up(
        engine: &PrivateDockerd,
        prefix: &str,
        services: &[ServiceSpec],
    ) -> anyhow::Result<Stack> {
        Self::up_labelled(engine, prefix, services, &HashMap::new()).await
    }

    /// [`Stack::up`] with `extra` labels on every container (e.g. the
    /// `com.docker.compose.project.config_files` that `docker compose`
    /// writes).
    pub async fn up_labelled(
        engine: &PrivateDockerd,
        prefix: &str,
        services: &[ServiceSpec],
        extra: &HashMap<String, String>,
    ) -> anyhow::Result<Stack> {
        let build = engine.clone();
        tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
            .await
            .context("image build task")??;
        let docker = opsdeck::docker::connect(Some(&engine.host()))
            .await
            .context("connecting to the private engine")?;
        let mut stack = Stack {
            engine: engine.clone(),
            docker,
            project: unique_project(prefix),
            services: services.to_vec(),
            ports: services
                .iter()
                .map(|s| (s.name.to_owned(), free_port()))
                .collect(),
            containers: Vec::new(),
        };
        for s in services {
            let name = stack.container(s.name);
            let mut labels = stack.compose_labels(s.name);
            labels.extend(extra.clone());
            if !s.requires.is_empty() {
                let deps: Vec<String> = s
                    .requires
                    .iter()
                    .map(|d| format!("{d}:service_started:false"))
                    .collect();
                labels.insert("com.docker.compose.depends_on".into(), deps.join(","));
            }
            let mut env = vec![
                format!("SERVICE={}", s.name),
                format!("PORT={}", stack.ports[s.name]),
            ];
            if s.name == "gitea" {
                env.push(format!("{SECRET_ENV}={SECRET_VALUE}"));
                env.push("GITEA__server__DOMAIN=git.example".into());
            }
            stack
                .create(&name, SCRIPT, env, labels, None)
                .await
                .with_context(|| format!("creating {name}"))?;
        }
        for s in services {
            let name = stack.container(s.name);
            stack
                .docker
                .start_container(&name, None::<StartContainerOptions>)
                .await
                .with_context(|| format!("starting {name}"))?;
        }
        stack.wait_healthy(Duration::from_secs(60)).await?;
        Ok(stack)
    }

    /// `{project}-{service}-1`, compose's container name.
    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    /// The stack's compose file (see [`compose_yaml`]).
    pub fn compose_yaml(&self) -> String {
        compose_yaml(&self.services, &self.ports)
    }

    /// A client of the private engine.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// `http://127.0.0.1:PORT/healthz` of a service.
    pub fn health_url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}/healthz", self.ports[service])
    }

    fn compose_labels(&self, service: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                "com.docker.compose.project".to_owned(),
                self.project.clone(),
            ),
            ("com.docker.compose.service".to_owned(), service.to_owned()),
            (
                "com.docker.compose.container-number".to_owned(),
                "1".to_owned(),
            ),
            ("com.docker.compose.oneoff".to_owned(), "False".to_owned()),
        ])
    }

    async fn create(
        &mut self,
        name: &str,
        script: &str,
        env: Vec<String>,
        labels: HashMap<String, String>,
        restart: Option<RestartPolicy>,
    ) -> anyhow::Result<()> {
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                restart_policy: restart,
                ..Default::default()
            }),
            ..Default::default()
        };
        // Recorded before creation: a half-created container is removed too.
        self.containers.push(name.to_owned());
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(name).build()),
                body,
            )
            .await?;
        Ok(())
    }

    /// Adds and starts a container `{project}-{service}-1` with the compose
    /// labels of this project running `script` under `sh -c` (no restart
    /// policy, no health endpoint). Returns the container's name.
    pub async fn add_script(&mut self, service: &str, script: &str) -> anyhow::Result<String> {
        let container = self.container(service);
        let labels = self.compose_labels(service);
        self.create(
            &container,
            script,
            vec![format!("SERVICE={service}")],
            labels,
            None,
        )
        .await?;
        self.docker
            .start_container(&container, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("starting {container}"))?;
        Ok(container)
    }

    /// Adds a container `{project}-{name}-1` (no compose labels: map it by
    /// container name) that prints `"<name> starting"` and exits 1, with
    /// restart policy on-failure: the engine keeps restarting it and its
    /// restart count grows. Returns the container's name.
    pub async fn add_crashing(&mut self, name: &str) -> anyhow::Result<String> {
        let container = self.container(name);
        self.create(
            &container,
            CRASH_SCRIPT,
            vec![format!("SERVICE={name}")],
            HashMap::from([("com.mosaic.stack".to_owned(), self.project.clone())]),
            Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(0),
            }),
        )
        .await?;
        self.docker
            .start_container(&container, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("starting {container}"))?;
        Ok(container)
    }

    /// Waits until every service answers 200 on `/healthz`.
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + timeout;
        for s in &self.services {
            let url = self.health_url(s.name);
            loop {
                let last = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => break,
                    Ok(r) => format!("status {}", r.status()),
                    Err(e) => e.to_string(),
                };
                if Instant::now() > deadline {
                    bail!(
                        "{} ({}) did not answer {url} within {timeout:?}: {last}",
                        s.name,
                        self.container(s.name)
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Stack {
    /// Force-removes the stack's containers with the docker CLI (blocking,
    /// best effort, never panics).
    fn drop(&mut self) {
        if self.containers.is_empty() {
            return;
        }
        let _ = self
            .engine
            .cli()
            .args(["rm", "--force", "--volumes"])
            .args(&self.containers)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mosaic_compose_names_every_service_and_dependency() {
        let text = mosaic_compose();
        for s in MOSAIC {
            assert!(text.contains(&format!("\n  {}:\n", s.name)), "{text}");
        }
        assert!(
            text.contains("    depends_on: [mariadb, redis]\n"),
            "{text}"
        );
        assert!(text.contains("      gitea:\n        condition: service_started\n"));
        assert!(text.contains("\"127.0.0.1:18004:18004\""), "{text}");
    }

    #[test]
    fn projects_are_unique_and_valid_names() {
        let a = unique_project("mosaic");
        let b = unique_project("mosaic");
        assert_ne!(a, b);
        for p in [a, b] {
            assert!(p.len() <= 63 && p.starts_with("mosaic-"), "{p}");
            assert!(p
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
        }
    }
}
