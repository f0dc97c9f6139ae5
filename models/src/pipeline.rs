//! Everything between a conversation and a reply: the chat template, the tokenizer, the images,
//! the model, and the generation loop with its KV cache and streaming callback.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ember_agent::RgbImage;
use ember_agent::policy::{ContentPart, Message};

use crate::chat::{ChatMessage, ChatTemplate};
use crate::config::{GenerationDefaults, PreprocessorConfig};
use crate::error::{ModelError, Result};
use crate::generate::{Sampler, SamplingConfig, StopReason};
use crate::image::{ImageProcessor, ProcessedImage};
use crate::model::QwenVl;
use crate::nn::Runtime;
use crate::text::KvCache;
use crate::tokenizer::{QwenTokenCounter, QwenTokenizer};

/// A prompt ready for the model.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// The rendered chat text (image pads not yet expanded).
    pub text: String,
    /// Token ids, each `<|image_pad|>` expanded to its image's token count.
    pub input_ids: Vec<u32>,
    /// The images, in prompt order.
    pub images: Vec<ProcessedImage>,
}

/// What a generation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The reply's text (special tokens removed).
    pub text: String,
    /// The generated ids (a final stop token included).
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub stop: StopReason,
    /// Prompt length.
    pub prompt_tokens: usize,
    /// Seconds encoding images.
    pub vision_s: f64,
    /// Seconds of prefill.
    pub prefill_s: f64,
    /// Seconds decoding.
    pub decode_s: f64,
}

/// A loaded checkpoint with its tokenizer, template and image preprocessor.
pub struct Vlm {
    /// The model.
    pub model: QwenVl,
    /// The tokenizer.
    pub tokenizer: Arc<QwenTokenizer>,
    /// The chat template.
    pub template: ChatTemplate,
    /// The image preprocessor.
    pub images: ImageProcessor,
    /// The checkpoint's sampling defaults.
    pub defaults: GenerationDefaults,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

impl Vlm {
    /// Loads a checkpoint directory onto a device.
    pub fn load(dir: &Path, rt: Runtime) -> Result<Self> {
        let tokenizer = QwenTokenizer::from_dir(dir)?;
        let template = ChatTemplate::from_dir(dir)?;
        let pre = PreprocessorConfig::from_dir(dir)?;
        let defaults = GenerationDefaults::from_dir(dir)?;
        let model = QwenVl::load(dir, rt)?;
        Self::assemble(model, tokenizer, template, pre, defaults, dir)
    }

    /// Puts loaded parts together (tests build tokenizers in memory).
    pub fn assemble(
        model: QwenVl,
        tokenizer: QwenTokenizer,
        template: ChatTemplate,
        pre: PreprocessorConfig,
        defaults: GenerationDefaults,
        dir: &Path,
    ) -> Result<Self> {
        let v = &model.config.vision;
        if pre.patch_size != v.patch_size
            || pre.merge_size != v.spatial_merge_size
            || pre.temporal_patch_size != v.temporal_patch_size
        {
            return Err(ModelError::config(
                pre.source
                    .clone()
                    .unwrap_or_else(|| dir.join("preprocessor_config.json")),
                "patch_size",
                format!(
                    "preprocessor patches ({}, merge {}, temporal {}) differ from the vision tower's ({}, {}, {})",
                    pre.patch_size,
                    pre.merge_size,
                    pre.temporal_patch_size,
                    v.patch_size,
                    v.spatial_merge_size,
                    v.temporal_patch_size
                ),
            ));
        }
        let image_pad = tokenizer.token_id("<|image_pad|>");
        if image_pad.is_some_and(|id| id != model.config.image_token_id) {
            return Err(ModelError::config(
                dir.join("config.json"),
                "image_token_id",
                format!(
                    "{} but the tokenizer's <|image_pad|> is {}",
                    model.config.image_token_id,
                    image_pad.unwrap_or_default()
                ),
            ));
        }
        Ok(Self {
            model,
            tokenizer: Arc::new(tokenizer),
            template,
            images: ImageProcessor::new(pre),
            defaults,
            dir: dir.to_path_buf(),
        })
    }

    /// A token counter for memory budgets, sharing this checkpoint's tokenizer.
    pub fn token_counter(&self) -> QwenTokenCounter {
        QwenTokenCounter {
            tokenizer: self.tokenizer.clone(),
            images: self.images.clone(),
        }
    }

    /// End-of-sequence ids: the checkpoint's, and `<|im_end|>` / `<|endoftext|>` when the
    /// tokenizer has them.
    pub fn eos_ids(&self) -> Vec<u32> {
        let mut v = self.defaults.eos_token_ids.clone();
        v.extend(self.model.config.eos_token_ids.iter().copied());
        for t in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = self.tokenizer.token_id(t) {
                v.push(id);
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Renders and tokenises a conversation (with the assistant's turn opened) and preprocesses
    /// its images.
    pub fn prompt(&self, messages: &[Message]) -> Result<Prompt> {
        let chat: Vec<ChatMessage> = messages.iter().map(ChatMessage::from_agent).collect();
        let images: Vec<&RgbImage> = messages
            .iter()
            .flat_map(|m| m.content.iter())
            .filter_map(|p| match p {
                ContentPart::Image(i) => Some(i.as_ref()),
                ContentPart::Text(_) => None,
            })
            .collect();
        let text = self.template.render(&chat, true)?;
        self.prompt_from_text(text, &images)
    }

    /// Tokenises an already rendered prompt with its images.
    pub fn prompt_from_text(&self, text: String, images: &[&RgbImage]) -> Result<Prompt> {
        let processed = images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                self.images.process(img).map_err(|e| match e {
                    ModelError::Image { message, .. } => ModelError::Image {
                        what: format!("#{i} ({}x{})", img.width, img.height),
                        message,
                    },
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = self.tokenizer.encode(&text)?;
        let pad = self.model.config.image_token_id;
        let merge = self.model.merge_size();
        let n_pads = ids.iter().filter(|&&i| i == pad).count();
        if n_pads != processed.len() {
            return Err(ModelError::Input(format!(
                "the prompt has {n_pads} image placeholder(s) but {} image(s) were given",
                processed.len()
            )));
        }
        let mut input_ids = Vec::with_capacity(
            ids.len() + processed.iter().map(|p| p.n_tokens(merge)).sum::<usize>(),
        );
        let mut next = processed.iter();
        for id in ids {
            if id == pad {
                let img = next.next().ok_or_else(|| {
                    ModelError::Input("more image placeholders than images".into())
                })?;
                input_ids.extend(std::iter::repeat_n(pad, img.n_tokens(merge)));
            } else {
                input_ids.push(id);
            }
        }
        Ok(Prompt {
            text,
            input_ids,
            images: processed,
        })
    }

    /// Generates a reply to `prompt`, streaming text to `on_text` as it is written.
    pub fn generate(
        &self,
        prompt: &Prompt,
        sampling: &SamplingConfig,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        self.generate_cancellable(prompt, sampling, on_text, &|| false)
    }

    /// [`Vlm::generate`] that stops with [`ModelError::Cancelled`] once `cancelled` says so;
    /// it is asked before the image encoding, before the prefill and between tokens.
    pub fn generate_cancellable(
        &self,
        prompt: &Prompt,
        sampling: &SamplingConfig,
        on_text: &mut dyn FnMut(&str),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Generation> {
        sampling.validate()?;
        let check = |tokens: usize| {
            if cancelled() {
                Err(ModelError::Cancelled { tokens })
            } else {
                Ok(())
            }
        };
        check(0)?;
        let t0 = Instant::now();
        let embeds = self.model.encode_images(&prompt.images)?;
        // Image encoding is lazy on some backends: the prefill below forces it, so vision time
        // is only separated when there are images and the read-back is explicit.
        let embeds = match embeds {
            Some(e) => {
                let e = e.clone();
                self.model
                    .runtime()
                    .device
                    .sync()
                    .map_err(|err| ModelError::Compute(format!("{err:?}")))?;
                Some(e)
            }
            None => None,
        };
        let vision_s = t0.elapsed().as_secs_f64();
        let grids: Vec<[usize; 3]> = prompt.images.iter().map(|i| i.grid_thw).collect();
        check(0)?;
        let mut cache = KvCache::new();
        let t1 = Instant::now();
        let pre = self
            .model
            .prefill(&prompt.input_ids, embeds, &grids, &mut cache, false)?;
        let prefill_s = t1.elapsed().as_secs_f64();

        let t2 = Instant::now();
        let mut stops = self.eos_ids();
        stops.extend(sampling.stop_token_ids.iter().copied());
        let mut sampler = Sampler::new(sampling.clone());
        let mut history = prompt.input_ids.clone();
        let mut tokens = Vec::new();
        let mut stream = self.tokenizer.stream(true);
        let mut text = String::new();
        let mut logits = pre.last_logits;
        let stop = loop {
            if tokens.len() >= sampling.max_new_tokens {
                break StopReason::MaxTokens;
            }
            check(tokens.len())?;
            let next = sampler.pick(&mut logits, &history);
            tokens.push(next);
            history.push(next);
            if stops.contains(&next) {
                break StopReason::StopToken(next);
            }
            if let Some(delta) = stream.push(next)? {
                text.push_str(&delta);
                on_text(&delta);
            }
            if let Some(s) = sampling
                .stop_strings
                .iter()
                .find(|s| !s.is_empty() && text.contains(s.as_str()))
            {
                break StopReason::StopString(s.clone());
            }
            if tokens.len() >= sampling.max_new_tokens {
                break StopReason::MaxTokens;
            }
            logits = self
                .model
                .decode(next, pre.positions.rope_delta, &mut cache)?;
        };
        let decode_s = t2.elapsed().as_secs_f64();
        let full = self.tokenizer.decode(&tokens, true)?;
        if full.len() > text.len() && full.starts_with(&text) {
            on_text(&full[text.len()..]);
        }
        Ok(Generation {
            text: full,
            tokens,
            stop,
            prompt_tokens: prompt.input_ids.len(),
            vision_s,
            prefill_s,
            decode_s,
        })
    }
}
