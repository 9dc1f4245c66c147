//! The PromQL function table: every function of Prometheus 3.x with its argument types, how
//! many optional or repeated arguments it takes, its result type, and whether it is
//! experimental (needs `enable_experimental_functions`).
//!
//! The signatures follow the Prometheus function documentation. `start()`, `end()`, `step()`,
//! `range()`, `min_of()` and `max_of()` are also usable as functions in expressions; inside a
//! range or after `offset` the same words form duration expressions instead.

use crate::ast::ValueType;

/// One function's signature.
#[derive(Debug, PartialEq, Eq)]
pub struct FunctionDef {
    pub name: &'static str,
    /// The types of the arguments. With `variadic != 0` the last entry describes the optional
    /// and repeated arguments.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments. `n > 0`: the last argument may be omitted or
    /// repeated, up to `arg_types.len() - 1 + n` arguments. `-1`: repeated without limit.
    pub variadic: i32,
    pub return_type: ValueType,
    pub experimental: bool,
}

impl FunctionDef {
    /// The fewest arguments the function accepts.
    pub fn min_args(&self) -> usize {
        if self.variadic == 0 {
            self.arg_types.len()
        } else {
            self.arg_types.len().saturating_sub(1)
        }
    }

    /// The most arguments the function accepts (`None`: no limit).
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            0 => Some(self.arg_types.len()),
            n if n > 0 => Some(self.arg_types.len().saturating_sub(1) + n as usize),
            _ => None,
        }
    }

    /// The expected type of argument `index` (0-based).
    pub fn arg_type(&self, index: usize) -> Option<ValueType> {
        match self.arg_types.get(index) {
            Some(t) => Some(*t),
            None if self.variadic != 0 => self.arg_types.last().copied(),
            None => None,
        }
    }
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

const fn def(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
    experimental: bool,
) -> FunctionDef {
    FunctionDef {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// All functions, sorted by name (looked up by binary search).
pub static FUNCTIONS: &[FunctionDef] = &[
    def("abs", &[V], 0, V, false),
    def("absent", &[V], 0, V, false),
    def("absent_over_time", &[M], 0, V, false),
    def("acos", &[V], 0, V, false),
    def("acosh", &[V], 0, V, false),
    def("asin", &[V], 0, V, false),
    def("asinh", &[V], 0, V, false),
    def("atan", &[V], 0, V, false),
    def("atanh", &[V], 0, V, false),
    def("avg_over_time", &[M], 0, V, false),
    def("ceil", &[V], 0, V, false),
    def("changes", &[M], 0, V, false),
    def("clamp", &[V, S, S], 0, V, false),
    def("clamp_max", &[V, S], 0, V, false),
    def("clamp_min", &[V, S], 0, V, false),
    def("cos", &[V], 0, V, false),
    def("cosh", &[V], 0, V, false),
    def("count_over_time", &[M], 0, V, false),
    def("day_of_month", &[V], 1, V, false),
    def("day_of_week", &[V], 1, V, false),
    def("day_of_year", &[V], 1, V, false),
    def("days_in_month", &[V], 1, V, false),
    def("deg", &[V], 0, V, false),
    def("delta", &[M], 0, V, false),
    def("deriv", &[M], 0, V, false),
    def("double_exponential_smoothing", &[M, S, S], 0, V, true),
    def("end", &[], 0, S, true),
    def("exp", &[V], 0, V, false),
    def("first_over_time", &[M], 0, V, true),
    def("floor", &[V], 0, V, false),
    def("histogram_avg", &[V], 0, V, false),
    def("histogram_count", &[V], 0, V, false),
    def("histogram_fraction", &[S, S, V], 0, V, false),
    def("histogram_quantile", &[S, V], 0, V, false),
    // One to ten quantiles after the vector and the name of the label that holds them.
    def("histogram_quantiles", &[V, Str, S, S], 9, V, true),
    def("histogram_stddev", &[V], 0, V, false),
    def("histogram_stdvar", &[V], 0, V, false),
    def("histogram_sum", &[V], 0, V, false),
    def("hour", &[V], 1, V, false),
    def("idelta", &[M], 0, V, false),
    def("increase", &[M], 0, V, false),
    def("info", &[V, V], 1, V, true),
    def("irate", &[M], 0, V, false),
    def("label_join", &[V, Str, Str, Str], -1, V, false),
    def("label_replace", &[V, Str, Str, Str, Str], 0, V, false),
    def("last_over_time", &[M], 0, V, false),
    def("ln", &[V], 0, V, false),
    def("log10", &[V], 0, V, false),
    def("log2", &[V], 0, V, false),
    def("mad_over_time", &[M], 0, V, true),
    def("max_of", &[S, S], 0, S, true),
    def("max_over_time", &[M], 0, V, false),
    def("min_of", &[S, S], 0, S, true),
    def("min_over_time", &[M], 0, V, false),
    def("minute", &[V], 1, V, false),
    def("month", &[V], 1, V, false),
    def("pi", &[], 0, S, false),
    def("predict_linear", &[M, S], 0, V, false),
    def("present_over_time", &[M], 0, V, false),
    def("quantile_over_time", &[S, M], 0, V, false),
    def("rad", &[V], 0, V, false),
    def("range", &[], 0, S, true),
    def("rate", &[M], 0, V, false),
    def("resets", &[M], 0, V, false),
    def("round", &[V, S], 1, V, false),
    def("scalar", &[V], 0, S, false),
    def("sgn", &[V], 0, V, false),
    def("sin", &[V], 0, V, false),
    def("sinh", &[V], 0, V, false),
    def("sort", &[V], 0, V, false),
    def("sort_by_label", &[V, Str], -1, V, true),
    def("sort_by_label_desc", &[V, Str], -1, V, true),
    def("sort_desc", &[V], 0, V, false),
    def("sqrt", &[V], 0, V, false),
    def("start", &[], 0, S, true),
    def("start_timestamp", &[V], 0, V, true),
    def("stddev_over_time", &[M], 0, V, false),
    def("stdvar_over_time", &[M], 0, V, false),
    def("step", &[], 0, S, true),
    def("sum_over_time", &[M], 0, V, false),
    def("tan", &[V], 0, V, false),
    def("tanh", &[V], 0, V, false),
    def("time", &[], 0, S, false),
    def("timestamp", &[V], 0, V, false),
    def("ts_of_first_over_time", &[M], 0, V, true),
    def("ts_of_last_over_time", &[M], 0, V, true),
    def("ts_of_max_over_time", &[M], 0, V, true),
    def("ts_of_min_over_time", &[M], 0, V, true),
    def("vector", &[S], 0, V, false),
    def("year", &[V], 1, V, false),
];

/// The function called `name` (case-sensitive, as in Prometheus).
pub fn lookup_function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in FUNCTIONS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} ≥ {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn lookup_and_argument_counts() {
        let f = lookup_function("label_join").expect("label_join exists");
        assert_eq!((f.min_args(), f.max_args()), (3, None));
        let f = lookup_function("round").expect("round exists");
        assert_eq!((f.min_args(), f.max_args()), (1, Some(2)));
        assert_eq!(f.arg_type(1), Some(ValueType::Scalar));
        let f = lookup_function("histogram_quantiles").expect("histogram_quantiles exists");
        assert_eq!((f.min_args(), f.max_args()), (3, Some(12)));
        assert_eq!(f.arg_type(11), Some(ValueType::Scalar));
        assert!(lookup_function("Rate").is_none());
        assert!(lookup_function("holt_winters").is_none());
    }
}
