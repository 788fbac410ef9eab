//! `ucr pull`: the admin API's streaming pull, drawn as one progress bar per layer in a
//! terminal (as `docker pull` does), or as plain lines behind a pipe, where bars would be
//! escape codes in a log.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::short_id;
use super::{ClientError, Conn};
use crate::config::PullFlags;
use crate::cri::admin_api::{LayerProgress, LayerState, PullImageWithProgressRequest};

/// Behind a pipe, a layer's line is repeated at most this often (besides its last).
const PLAIN_EVERY: Duration = Duration::from_secs(1);

/// Digests in progress lines are 12 hex characters, as docker's.
fn layer_name(name: &str) -> &str {
    let short = short_id(name);
    short.get(..12).unwrap_or(short)
}

pub async fn pull(flags: PullFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let mut stream = conn
        .admin()
        .pull_image_with_progress(PullImageWithProgressRequest {
            image: flags.image.clone(),
        })
        .await
        .map_err(ClientError::call("PullImageWithProgress"))?
        .into_inner();
    let mut view: Box<dyn View> = if std::io::stdout().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines::default())
    };
    while let Some(message) = stream
        .message()
        .await
        .map_err(ClientError::call("PullImageWithProgress"))?
    {
        for layer in &message.layers {
            view.update(layer);
        }
        if !message.image_ref.is_empty() {
            view.finish();
            println!("{}", message.image_ref);
            return Ok(());
        }
    }
    Err(ClientError::Call {
        call: "PullImageWithProgress",
        code: tonic::Code::Unavailable,
        message: format!(
            "the daemon ended the pull of {} without a result",
            flags.image
        ),
    })
}

trait View {
    fn update(&mut self, layer: &LayerProgress);
    fn finish(&mut self);
}

/// indicatif bars, one per layer, in the order the layers are first reported.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
    unknown: ProgressStyle,
}

impl Bars {
    fn new() -> Bars {
        let style = ProgressStyle::with_template(
            "{prefix} {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        // An archive layer of unknown size: what has come, and how fast.
        let unknown = ProgressStyle::with_template("{prefix} {msg:<12} {bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
            style,
            unknown,
        }
    }
}

impl View for Bars {
    fn update(&mut self, layer: &LayerProgress) {
        let bar = self.bars.entry(layer.name.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(layer.total));
            let style = if layer.total > 0 {
                &self.style
            } else {
                &self.unknown
            };
            bar.set_style(style.clone());
            bar.set_prefix(layer_name(&layer.name).to_string());
            bar
        });
        if bar.is_finished() {
            return;
        }
        bar.set_position(layer.done);
        match LayerState::try_from(layer.state) {
            Ok(LayerState::Waiting) => bar.set_message("waiting"),
            Ok(LayerState::Downloading) => bar.set_message("downloading"),
            Ok(LayerState::Done) => bar.finish_with_message("done"),
            Ok(LayerState::Exists) => bar.finish_with_message("exists"),
            Err(_) => {}
        }
    }

    fn finish(&mut self) {
        for bar in self.bars.values().filter(|b| !b.is_finished()) {
            bar.finish();
        }
    }
}

/// Plain lines: `<layer> <done>/<total> bytes`, at most once a second per layer, and
/// once more when it is complete.
#[derive(Default)]
struct Lines {
    last: HashMap<String, (Instant, bool)>,
}

impl View for Lines {
    fn update(&mut self, layer: &LayerProgress) {
        let complete = matches!(
            LayerState::try_from(layer.state),
            Ok(LayerState::Done | LayerState::Exists)
        );
        let now = Instant::now();
        let due = match self.last.get(&layer.name) {
            None => true,
            Some((_, true)) => false,
            Some((at, false)) => complete || now.duration_since(*at) >= PLAIN_EVERY,
        };
        if !due {
            return;
        }
        self.last.insert(layer.name.clone(), (now, complete));
        let name = layer_name(&layer.name);
        let (done, total) = (layer.done, layer.total);
        match LayerState::try_from(layer.state) {
            Ok(LayerState::Exists) => println!("{name} already exists"),
            Ok(LayerState::Done) => println!("{name} {done}/{done} bytes done"),
            _ if total > 0 => println!("{name} {done}/{total} bytes"),
            _ => println!("{name} {done} bytes"),
        }
    }

    fn finish(&mut self) {}
}
