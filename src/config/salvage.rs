//! Reading a configuration section that does not deserialise as a whole: serde stops
//! at the first error, so the part that failed is cut out and the rest read again,
//! until it reads. Every error met on the way is kept (with the file's own array
//! indices and the source of the value), and so is every part that was cut, so that
//! `check-config` can report all type errors and still validate what did parse.

use figment::Figment;
use figment::error::Kind;
use figment::value::Value;
use serde::de::DeserializeOwned;

/// At most this many parts are cut from one section before giving up.
const MAX_CUTS: usize = 100;

/// What could be read of a section.
pub struct Salvaged<T> {
    /// The section without the parts that failed; `None` when even that does not read.
    pub value: Option<T>,
    /// The errors, with paths relative to the section as it was written.
    pub errors: Vec<figment::Error>,
    /// The parts cut out, as paths relative to the section as it was written.
    pub cut: Vec<Vec<String>>,
}

/// Reads `value` (a section found in `figment`) as a `T`, cutting out what fails.
pub fn read<T: DeserializeOwned>(figment: &Figment, value: Value) -> Salvaged<T> {
    let mut pruned = Pruned { value, removed: Vec::new() };
    let mut salvaged = Salvaged { value: None, errors: Vec::new(), cut: Vec::new() };
    for _ in 0..MAX_CUTS {
        let mut error = match T::deserialize(&pruned.value) {
            Ok(value) => {
                salvaged.value = Some(value);
                return salvaged;
            }
            Err(error) => error,
        };
        let current = std::mem::take(&mut error.path);
        let at = pruned.original_path(&current);
        // A required field is missing only because its bad value was cut: the error
        // was reported already; what contains the field has to go too.
        let consequence = match &error.kind {
            Kind::MissingField(field) => salvaged.cut.contains(&[at.clone(), vec![field.to_string()]].concat()),
            _ => false,
        };
        if !consequence {
            error.metadata = pruned.find(&current).and_then(|v| figment.get_metadata(v.tag())).cloned();
            error.path = at.clone();
            salvaged.errors.push(error);
        }
        if current.is_empty() || !pruned.remove(&current) {
            return salvaged;
        }
        salvaged.cut.push(at);
    }
    salvaged
}

/// A value with parts removed, remembering which array elements went so that paths
/// into what is left can be translated back to the original.
struct Pruned {
    value: Value,
    /// `(path of the array in the original, original index)` of each removed element.
    removed: Vec<(Vec<String>, usize)>,
}

impl Pruned {
    fn find(&self, path: &[String]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |node, key| match node {
            Value::Dict(_, map) => map.get(key),
            Value::Array(_, items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// `path` (into the pruned value) as a path into the original value.
    fn original_path(&self, path: &[String]) -> Vec<String> {
        let mut original: Vec<String> = Vec::new();
        let mut node = Some(&self.value);
        for key in path {
            node = match (node, key.parse::<usize>()) {
                (Some(Value::Array(_, items)), Ok(index)) => {
                    original.push(self.original_index(&original, index).to_string());
                    items.get(index)
                }
                (Some(Value::Dict(_, map)), _) => {
                    original.push(key.clone());
                    map.get(key)
                }
                _ => {
                    original.push(key.clone());
                    None
                }
            };
        }
        original
    }

    /// The original index of the element now at `index` in the array at `array`.
    fn original_index(&self, array: &[String], index: usize) -> usize {
        let gone: Vec<usize> = self.removed.iter().filter(|(p, _)| p == array).map(|(_, i)| *i).collect();
        (0..).filter(|i| !gone.contains(i)).nth(index).unwrap_or(index)
    }

    /// Removes the value at `path` (into the pruned value); false if there is none.
    fn remove(&mut self, path: &[String]) -> bool {
        let Some((last, parent_path)) = path.split_last() else { return false };
        let original_parent = self.original_path(parent_path);
        let parent = parent_path.iter().try_fold(&mut self.value, |node, key| match node {
            Value::Dict(_, map) => map.get_mut(key),
            Value::Array(_, items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        });
        match parent {
            Some(Value::Dict(_, map)) => map.remove(last).is_some(),
            Some(Value::Array(_, items)) => match last.parse::<usize>() {
                Ok(index) if index < items.len() => {
                    items.remove(index);
                    let original = self.original_index(&original_parent, index);
                    self.removed.push((original_parent, original));
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}
