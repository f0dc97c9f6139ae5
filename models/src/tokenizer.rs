//! The checkpoint's tokenizer (`tokenizer.json`, through the `tokenizers` crate), the Qwen
//! special tokens, and token counting for memory budgets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember_agent::memory::TokenCounter;

use crate::error::{ModelError, Result};
use crate::image::ImageProcessor;

/// A Hugging Face tokenizer with the Qwen chat tokens resolved.
pub struct QwenTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl QwenTokenizer {
    /// Loads `DIR/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::from_file(&dir.join("tokenizer.json"))
    }

    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer.json not found"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Wraps a tokenizer built in memory (tests).
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        Self {
            inner,
            path: PathBuf::from("<memory>"),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Token ids of `text` (special tokens in the text, such as `<|im_start|>`, become their
    /// ids; no BOS is added, as Qwen adds none).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| self.err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.err(e))
    }

    /// The id of a token string (`<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size with added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// An incremental decoder: feed ids one at a time, get text as soon as it is whole
    /// (multi-byte characters split over tokens are held back).
    pub fn stream(&self, skip_special_tokens: bool) -> TextStream<'_> {
        TextStream {
            tok: self,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            skip_special_tokens,
        }
    }

    /// The underlying tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// GPT-2's byte-to-character table (byte-level BPE vocabularies are written in it).
fn bytes_to_unicode() -> Vec<char> {
    let mut bs: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(u32::from('¡')..=u32::from('¬'))
        .chain(u32::from('®')..=u32::from('ÿ'))
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        table[*b as usize] = char::from_u32(c).unwrap_or('\u{FFFD}');
    }
    table
}

/// A byte-level BPE tokenizer without merges: one token per byte (ids 0-255), unused ids up to
/// the first special token, and the given special tokens at the given ids. Any text encodes
/// (byte by byte) and decodes back exactly; tiny test checkpoints use it in place of a trained
/// vocabulary, with the Qwen special tokens at the ids their config.json names.
pub fn byte_level(specials: &[(&str, u32)]) -> Result<QwenTokenizer> {
    use serde_json::{Map, Value, json};
    let first_special = specials.iter().map(|s| s.1).min().unwrap_or(256);
    if first_special < 256 {
        return Err(ModelError::Tokenizer {
            path: PathBuf::from("<byte-level>"),
            message: format!(
                "special token ids must be >= 256 (bytes take 0-255), got {first_special}"
            ),
        });
    }
    let mut vocab = Map::new();
    for (b, c) in bytes_to_unicode().iter().enumerate() {
        vocab.insert(c.to_string(), json!(b));
    }
    for id in 256..first_special {
        vocab.insert(format!("<|unused_{id}|>"), json!(id));
    }
    let added: Vec<Value> = specials
        .iter()
        .map(|(s, id)| {
            json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    });
    let inner: tokenizers::Tokenizer =
        spec.to_string()
            .parse()
            .map_err(
                |e: Box<dyn std::error::Error + Send + Sync>| ModelError::Tokenizer {
                    path: PathBuf::from("<byte-level>"),
                    message: e.to_string(),
                },
            )?;
    let tok = QwenTokenizer::from_tokenizer(inner);
    for (s, id) in specials {
        if tok.token_id(s) != Some(*id) {
            return Err(ModelError::Tokenizer {
                path: PathBuf::from("<byte-level>"),
                message: format!(
                    "special token {s} did not get id {id} (ids must be consecutive from the first)"
                ),
            });
        }
    }
    Ok(tok)
}

/// The Qwen chat special tokens in their usual order, at consecutive ids from `first`.
pub fn qwen_specials(first: u32) -> Vec<(&'static str, u32)> {
    [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| (*s, first + i as u32))
    .collect()
}

/// Incremental detokenisation (the prefix/read-offset scheme of text-generation servers).
pub struct TextStream<'a> {
    tok: &'a QwenTokenizer,
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
    skip_special_tokens: bool,
}

impl TextStream<'_> {
    /// Adds a token; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let before = self
            .tok
            .decode(&self.ids[self.prefix..self.read], self.skip_special_tokens)?;
        let now = self
            .tok
            .decode(&self.ids[self.prefix..], self.skip_special_tokens)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            let delta = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(Some(delta))
        } else {
            Ok(None)
        }
    }
}

/// Counts tokens the way a Qwen-VL prompt spends them: text through the tokenizer, images
/// through `smart_resize` (one token per 2x2 patches, plus `<|vision_start|>`/`<|vision_end|>`).
#[derive(Clone)]
pub struct QwenTokenCounter {
    /// The tokenizer.
    pub tokenizer: Arc<QwenTokenizer>,
    /// The image preprocessor.
    pub images: ImageProcessor,
}

impl QwenTokenCounter {
    /// A counter from a checkpoint directory's tokenizer and preprocessor alone (no weights).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Ok(Self {
            tokenizer: Arc::new(QwenTokenizer::from_dir(dir)?),
            images: ImageProcessor::new(crate::config::PreprocessorConfig::from_dir(dir)?),
        })
    }
}

impl TokenCounter for QwenTokenCounter {
    fn text_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text)
            .map(|v| v.len())
            .unwrap_or_else(|_| text.len().div_ceil(4))
    }

    fn image_tokens(&self, width: u32, height: u32) -> usize {
        self.images
            .tokens_for(height as usize, width as usize)
            .unwrap_or(0)
            + 2
    }
}
