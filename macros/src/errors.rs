//! Every error of one expansion, collected so that a build reports them all.

/// Every error found so far, combined into one `syn::Error` (which renders as one
/// `compile_error!` per message, each at its own span).
#[derive(Debug, Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn append(&mut self, other: Errors) {
        if let Some(error) = other.0 {
            self.push(error);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }

    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.0
            .clone()
            .into_iter()
            .flatten()
            .map(|error| error.to_string())
            .collect()
    }
}
