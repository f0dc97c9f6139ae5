//! Reading AI2-THOR action parameters from a JSON map, with `SimError::BadParameter` for a
//! parameter of the wrong type.

use serde_json::{Map, Value};

use crate::backend::SimError;

use super::geom::V3;

pub(crate) struct Params<'a> {
    pub action: &'a str,
    pub map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    fn bad(&self, parameter: &str, problem: impl Into<String>) -> SimError {
        SimError::BadParameter {
            action: self.action.to_string(),
            parameter: parameter.to_string(),
            problem: problem.into(),
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A number, `None` when absent.
    pub fn f64_opt(&self, name: &str) -> Result<Option<f64>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.bad(name, format!("must be a finite number, got {v}"))),
            },
        }
    }

    /// A number with a default.
    pub fn f64_or(&self, name: &str, default: f64) -> Result<f64, SimError> {
        Ok(self.f64_opt(name)?.unwrap_or(default))
    }

    /// A boolean, `None` when absent.
    pub fn bool_opt(&self, name: &str) -> Result<Option<bool>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.bad(name, format!("must be a boolean, got {v}"))),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, SimError> {
        Ok(self.bool_opt(name)?.unwrap_or(default))
    }

    /// A required string.
    pub fn str_req(&self, name: &str) -> Result<&'a str, SimError> {
        match self.get(name) {
            None => Err(self.bad(name, "is missing")),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(v) => Err(self.bad(name, format!("must be a string, got {v}"))),
        }
    }

    fn vec3_of(&self, name: &str, v: &Value) -> Result<V3, SimError> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.bad(name, format!("must be an object {{x, y, z}}, got {v}")))?;
        let comp = |k: &str| -> Result<f64, SimError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(0.0),
                Some(x) => x.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                    self.bad(
                        name,
                        format!("component '{k}' must be a finite number, got {x}"),
                    )
                }),
            }
        };
        Ok(V3::new(comp("x")?, comp("y")?, comp("z")?))
    }

    /// A `{x, y, z}` object, `None` when absent.
    pub fn vec3_opt(&self, name: &str) -> Result<Option<V3>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => self.vec3_of(name, v).map(Some),
        }
    }

    /// A rotation: a number (yaw degrees) or `{x, y, z}` (its `y`); `None` when absent.
    pub fn yaw_opt(&self, name: &str) -> Result<Option<f64>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.is_number() => self.f64_opt(name),
            Some(v) => self.vec3_of(name, v).map(|r| Some(r.y)),
        }
    }

    /// A list of numbers, `None` when absent.
    pub fn f64_list_opt(&self, name: &str) -> Result<Option<Vec<f64>>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| self.bad(name, format!("must hold numbers, got {x}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.bad(name, format!("must be a list of numbers, got {v}"))),
        }
    }

    /// A list of booleans, `None` when absent.
    pub fn bool_list_opt(&self, name: &str) -> Result<Option<Vec<bool>>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_bool()
                        .ok_or_else(|| self.bad(name, format!("must hold booleans, got {x}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.bad(name, format!("must be a list of booleans, got {v}"))),
        }
    }

    /// A list of `{x, y, z}` (or rotations given as numbers), `None` when absent.
    pub fn vec3_list_opt(&self, name: &str) -> Result<Option<Vec<V3>>, SimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| self.vec3_of(name, x))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.bad(name, format!("must be a list of {{x, y, z}}, got {v}"))),
        }
    }
}
