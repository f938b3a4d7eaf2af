//! The results of one run and their rendering into `BENCHMARKS.md` / `BENCHMARKS.ru.md`.
//!
//! Both documents come from the same [`Results`], so the figures of the twins cannot differ;
//! only the words are per language. Every target is evaluated here, from the figures, and a
//! missed one says by how much.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::exec::Usage;
use super::failover::Trial;
use super::hook::{self, Case, ScaleResult};
use super::probe::TargetRtts;
use super::stats::{max, median, paired_ratio, quantile};
use super::wire::{self, Memory, Pair};

/// Document language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English (`BENCHMARKS.md`).
    En,
    /// Russian (`BENCHMARKS.ru.md`).
    Ru,
}

impl Lang {
    pub(super) fn t<'a>(self, en: &'a str, ru: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

/// The machine a run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
}

impl Machine {
    /// Reads `/proc`.
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Self {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            memory_mib,
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Where.
    pub machine: Machine,
    /// When (UTC date).
    pub date: String,
    /// How to reproduce.
    pub command: String,
    /// Whether this was a `--quick` smoke run.
    pub quick: bool,
    /// Part 1.
    pub hook: Vec<ScaleResult>,
    /// Part 1: the hook executable doing nothing (`hook list`), the floor of any run's memory.
    #[serde(default)]
    pub hook_floor: Option<Usage>,
    /// Parts 2 and 4.
    pub neighbour: Option<super::wire::Results>,
    /// Part 3.
    pub failover: Vec<super::failover::Trial>,
    /// Part 5.
    #[serde(default)]
    pub bgp: Option<super::bgp::Results>,
}

impl Results {
    /// Empty results for a run started now on this machine.
    pub fn new(command: String, quick: bool) -> Self {
        Self { machine: Machine::detect(), date: today(), command, quick, ..Self::default() }
    }
}

/// Alignment of a Markdown table column.
#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Right,
}

/// Writes a Markdown table's title and alignment rows; each column is `(English, Russian,
/// alignment)`.
pub(super) fn table_header(s: &mut String, lang: Lang, columns: &[(&str, &str, Align)]) {
    let titles: Vec<&str> = columns.iter().map(|&(en, ru, _)| lang.t(en, ru)).collect();
    let rule: Vec<&str> = columns
        .iter()
        .map(|&(_, _, align)| match align {
            Align::Left => "---",
            Align::Right => "---:",
        })
        .collect();
    let _ = writeln!(s, "| {} |\n|{}|", titles.join(" | "), rule.join("|"));
}

/// Today's UTC date, `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    addon::rfc3339(secs)[..10].to_owned()
}

/// A target check: met, or missed by a factor.
pub(super) struct Verdict {
    pub(super) met: bool,
    pub(super) text: String,
}

/// `value ≤ limit`, worded. Seconds get milliseconds, so a near miss shows.
pub(super) fn at_most(lang: Lang, value: f64, limit: f64, unit: &str) -> Verdict {
    if value.is_nan() {
        return Verdict {
            met: false, text: lang.t("not measured", "не измерено").to_owned()
        };
    }
    let shown = if unit == " s" { format!("{value:.3}") } else { format!("{value:.2}") };
    if value <= limit {
        let met = lang.t("met", "выполнено");
        return Verdict { met: true, text: format!("{met} ({shown}{unit} ≤ {limit}{unit})") };
    }
    let over = (value / limit - 1.0) * 100.0;
    let over = if over < 10.0 { format!("{over:.1}") } else { format!("{over:.0}") };
    Verdict {
        met: false,
        text: format!(
            "{} ({shown}{unit} > {limit}{unit}, {} {over} %)",
            lang.t("**missed**", "**не выполнено**"),
            lang.t("over by", "превышение на"),
        ),
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn walls(u: &[Usage]) -> Vec<f64> {
    u.iter().map(|x| x.wall_s).collect()
}

fn peak_mib(u: &[Usage]) -> f64 {
    median(&u.iter().map(|x| x.max_rss_kib as f64 / 1024.0).collect::<Vec<_>>())
}

/// Hook median over baseline median, paired by round.
fn time_ratio(c: &Case) -> f64 {
    paired_ratio(&walls(&c.hook), &walls(&c.baseline))
}

/// Peak memory over input size.
fn memory_ratio(c: &Case) -> f64 {
    peak_mib(&c.hook) / mib(c.input_bytes as f64)
}

/// Renders the whole document.
pub fn render(r: &Results, lang: Lang) -> String {
    let mut s = String::new();
    let title = lang.t("The metallb module: benchmarks", "Модуль metallb: бенчмарки");
    let _ = writeln!(s, "---\ntitle: \"{title}\"\n---\n");
    let _ = writeln!(
        s,
        "{}\n",
        lang.t(
            "<!-- Written by `cargo xtask bench`; edit the generator (xtask/src/bench/report.rs), not this file. -->",
            "<!-- Пишется командой `cargo xtask bench`; правьте генератор (xtask/src/bench/report.rs), а не этот файл. -->"
        )
    );
    if r.quick {
        let _ = writeln!(
            s,
            "> {}\n",
            lang.t(
                "**Smoke run (`--quick`)**: few samples; the figures only show that the benchmark works.",
                "**Пробный прогон (`--quick`)**: мало замеров; цифры лишь показывают, что бенчмарк работает."
            )
        );
    }
    machine(&mut s, r, lang);
    let mut body = String::new();
    let mut summary = Vec::new();
    if !r.hook.is_empty() {
        hook_section(&mut body, &mut summary, &r.hook, r.hook_floor.as_ref(), lang);
    }
    if let Some(n) = &r.neighbour {
        neighbour_section(&mut body, &mut summary, n, lang);
    }
    if !r.failover.is_empty() {
        failover_section(&mut body, &mut summary, &r.failover, lang);
    }
    if let Some(n) = &r.neighbour {
        memory_section(&mut body, &mut summary, &n.memory, lang);
    }
    if let Some(b) = &r.bgp {
        super::bgp::report::section(&mut body, &mut summary, b, lang);
    }
    let _ = writeln!(s, "## {}\n", lang.t("Targets at a glance", "Цели кратко"));
    table_header(
        &mut s,
        lang,
        &[("target", "цель", Align::Left), ("result", "результат", Align::Left)],
    );
    for (target, verdict) in &summary {
        let _ = writeln!(s, "| {target} | {} |", verdict.text);
    }
    let missed = summary.iter().filter(|(_, v)| !v.met).count();
    let _ = writeln!(
        s,
        "\n{}: {missed} / {}.\n",
        lang.t("Targets missed", "Не выполнено целей"),
        summary.len()
    );
    s.push_str(&body);
    s
}

/// A target and its verdict, for the summary table.
pub(super) type Summary = Vec<(String, Verdict)>;

fn machine(s: &mut String, r: &Results, lang: Lang) {
    let m = &r.machine;
    let _ = writeln!(s, "## {}\n", lang.t("Setup", "Стенд"));
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| {} | {} |", lang.t("Date (UTC)", "Дата (UTC)"), r.date);
    let _ = writeln!(s, "| CPU | {} |", m.cpu);
    let _ = writeln!(s, "| {} | {} |", lang.t("Logical cores", "Логических ядер"), m.cores);
    let _ = writeln!(s, "| {} | {} MiB |", lang.t("Memory", "Память"), m.memory_mib);
    let _ = writeln!(s, "| {} | {} |", lang.t("Kernel", "Ядро"), m.kernel);
    let _ = writeln!(s, "| {} | `{}` |\n", lang.t("Command", "Команда"), r.command);
    let _ = writeln!(
        s,
        "{}\n",
        lang.t(
            "The machine is small and shared with other builds, so absolute times are noisy. Every \
             figure that depends on the machine's speed is therefore given as a ratio to a baseline \
             measured in alternation with it in the same run (the median of the per-round ratios), \
             and medians are quoted rather than means. The binaries are the release builds of this \
             repository. Benchmarks only measure: no test asserts a timing.",
            "Машина небольшая и делится с другими сборками, так что абсолютные времена шумные. \
             Поэтому каждая величина, зависящая от скорости машины, дается как отношение к базовому \
             замеру, выполненному поочередно с ней в том же прогоне (медиана отношений по раундам), \
             и приводятся медианы, а не средние. Бинарные файлы — release-сборки этого репозитория. \
             Бенчмарки только измеряют: ни один тест не проверяет время."
        )
    );
}

fn hook_section(
    s: &mut String,
    summary: &mut Summary,
    scales: &[ScaleResult],
    floor: Option<&Usage>,
    lang: Lang,
) {
    let _ =
        writeln!(s, "## 1. {}\n", lang.t("Discovery hook at scale", "Хук discovery под нагрузкой"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "One `hook run` of the real `metallb-hooks` binary (the `discovery` hook, `beforeHelm` \
                 context with every snapshot, as the framework sends it) over a generated cluster: \
                 {} nodes with ready speakers, 5 classes, N LoadBalancer Services asking for {} IPs \
                 each, with an EndpointSlice each. The contexts are built with the bindings and jq \
                 filters the binary itself declares in `hook config`. *First*: no child exists yet. \
                 *Steady*: the first run's outputs applied by the test kit's fake cluster, so all \
                 children exist with their status (what almost every run sees; the hook must emit \
                 no Kubernetes operation). Baseline: a program that reads the same files into generic \
                 JSON values (`serde_json::Value`) and writes output files of the same sizes. Peak \
                 memory is `ru_maxrss` of the child process.",
                hook::NODES,
                hook::IPS_PER_SERVICE
            ),
            Lang::Ru => format!(
                "Один `hook run` настоящего бинарного файла `metallb-hooks` (хук `discovery`, контекст \
                 `beforeHelm` со всеми снапшотами, как его передает фреймворк) на сгенерированном \
                 кластере: {} узлов с готовыми спикерами, 5 классов, N сервисов LoadBalancer, каждый \
                 просит {} IP и имеет свой EndpointSlice. Контексты строятся по привязкам и \
                 jq-фильтрам, которые объявляет сам бинарный файл в `hook config`. *Первый*: дочерних \
                 объектов еще нет. *Установившийся*: результаты первого запуска применены фейковым \
                 кластером тестового набора, все дочерние объекты существуют со статусом (так выглядит \
                 почти каждый запуск; хук не должен выдать ни одной операции Kubernetes). Базовый \
                 замер: программа, которая читает те же файлы в обобщенные JSON-значения \
                 (`serde_json::Value`) и пишет выходные файлы того же размера. Пиковая память — \
                 `ru_maxrss` дочернего процесса.",
                hook::NODES,
                hook::IPS_PER_SERVICE
            ),
        }
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        lang.t("Services", "Сервисы"),
        lang.t("run", "запуск"),
        lang.t("runs", "замеров"),
        lang.t("input, MiB", "вход, MiB"),
        lang.t("output, MiB", "выход, MiB"),
        lang.t("hook, s (median)", "хук, с (медиана)"),
        lang.t("baseline, s", "база, с"),
        lang.t("hook / baseline", "хук / база"),
        lang.t("peak memory, MiB", "пик памяти, MiB"),
        lang.t("peak / input", "пик / вход"),
        lang.t("baseline peak, MiB", "пик базы, MiB"),
        lang.t("Kubernetes ops", "операций Kubernetes"),
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for sc in scales {
        for (name, c) in
            [(lang.t("first", "первый"), &sc.first), (lang.t("steady", "устан."), &sc.steady)]
        {
            let _ = writeln!(
                s,
                "| {} | {name} | {} | {:.1} | {:.1} | {:.3} | {:.3} | {:.2}× | {:.1} | {:.2}× | {:.1} | {} |",
                sc.services,
                c.hook.len(),
                mib(c.input_bytes as f64),
                mib((c.output.values_patch + c.output.kubernetes + c.output.metrics) as f64),
                median(&walls(&c.hook)),
                median(&walls(&c.baseline)),
                time_ratio(c),
                peak_mib(&c.hook),
                memory_ratio(c),
                peak_mib(&c.baseline),
                c.kube_ops
            );
        }
    }
    if let Some(big) = scales.iter().max_by_key(|sc| sc.services) {
        let c = &big.steady;
        let base = peak_mib(&c.baseline) / mib(c.input_bytes as f64);
        let _ = writeln!(
            s,
            "\n{}",
            match lang {
                Lang::En => format!(
                    "On memory: at {} Services the parse-only baseline alone peaks at {base:.1}× its \
                     input, the hook at {:.1}× (that is {:.2}× the baseline). The hook keeps as text \
                     only the stored state it compares its writes with (children and statuses); \
                     Services and EndpointSlices are read into the planner's compact model (short \
                     strings inline, small maps as sorted vectors) and their text is freed. The \
                     planner decides first and then renders one child and one Service status at a \
                     time, and each Kubernetes operation goes to the framework's file as it is \
                     made, so neither the desired state nor the output is ever held whole. A first \
                     run writes several times more than it reads; what it holds is the planner's \
                     state per Service and per IP, on top of what the executable takes before \
                     reading anything (below).",
                    big.services,
                    memory_ratio(c),
                    peak_mib(&c.hook) / peak_mib(&c.baseline)
                ),
                Lang::Ru => format!(
                    "О памяти: при {} сервисах сам базовый замер (только разбор) дает пик в {base:.1}× \
                     от входа, хук — {:.1}× (то есть {:.2}× от базы). Текстом хук держит только \
                     сохраненное состояние, с которым сравнивает свои записи (дочерние объекты и \
                     статусы); сервисы и EndpointSlice читаются в компактную модель планировщика \
                     (короткие строки — на месте, малые словари — отсортированные векторы), а их \
                     текст освобождается. Планировщик сначала принимает решения, а затем строит по \
                     одному дочернему объекту и статусу сервиса за раз, и каждая операция \
                     Kubernetes уходит в файл фреймворка по мере создания, так что ни желаемое \
                     состояние, ни вывод целиком в памяти не бывают. Первый запуск пишет в \
                     несколько раз больше, чем читает; держит он состояние планировщика на каждый \
                     сервис и IP — сверх того, что занимает исполняемый файл до чтения входа \
                     (ниже).",
                    big.services,
                    memory_ratio(c),
                    peak_mib(&c.hook) / peak_mib(&c.baseline)
                ),
            }
        );
    }
    // Each case above the target, with the share of what the executable takes doing nothing.
    if let Some(floor) = floor {
        let floor_mib = floor.max_rss_kib as f64 / 1024.0;
        for sc in scales {
            for (name, c) in [
                (lang.t("first", "первый"), &sc.first),
                (lang.t("steady", "установившийся"), &sc.steady),
            ] {
                if memory_ratio(c) <= 3.0 {
                    continue;
                }
                let share = floor_mib / mib(c.input_bytes as f64);
                let _ = writeln!(
                    s,
                    "\n{}",
                    match lang {
                        Lang::En => format!(
                            "{} Services, {name} run: {:.2}× its input, of which {share:.2}× is the \
                             executable doing nothing ({floor_mib:.1} MiB); the rest, {:.2}×, is \
                             the run's own.",
                            sc.services,
                            memory_ratio(c),
                            memory_ratio(c) - share
                        ),
                        Lang::Ru => format!(
                            "{} сервисов, {name} запуск: {:.2}× от входа, из них {share:.2}× — \
                             исполняемый файл, не делающий ничего ({floor_mib:.1} MiB); остальное, \
                             {:.2}×, — сам запуск.",
                            sc.services,
                            memory_ratio(c),
                            memory_ratio(c) - share
                        ),
                    }
                );
            }
        }
    }
    // The smallest input against what the executable takes before reading anything.
    let smallest =
        scales.iter().flat_map(|sc| [&sc.first, &sc.steady]).min_by_key(|c| c.input_bytes);
    if let (Some(floor), Some(c)) = (floor, smallest) {
        let floor_mib = floor.max_rss_kib as f64 / 1024.0;
        let limit_mib = 3.0 * mib(c.input_bytes as f64);
        if floor_mib > limit_mib {
            let _ = writeln!(
                s,
                "\n{}",
                match lang {
                    Lang::En => format!(
                        "For scale: the hook executable doing nothing (`hook list`) peaks at \
                         {floor_mib:.1} MiB, more than 3× the smallest input ({limit_mib:.1} MiB), \
                         so that case cannot meet the memory target whatever the hook does."
                    ),
                    Lang::Ru => format!(
                        "Для масштаба: исполняемый файл хуков, не делающий ничего (`hook list`), \
                         занимает до {floor_mib:.1} MiB — больше 3× самого маленького входа \
                         ({limit_mib:.1} MiB), так что этот случай не уложится в цель по памяти, \
                         что бы хук ни делал."
                    ),
                }
            );
        }
    }
    let _ = writeln!(s, "\n### {}\n", lang.t("Targets", "Цели"));
    for sc in scales {
        for (name, c) in [
            (lang.t("first", "первый"), &sc.first),
            (lang.t("steady", "установившийся"), &sc.steady),
        ] {
            let time = at_most(lang, time_ratio(c), 2.0, "×");
            let memory = at_most(lang, memory_ratio(c), 3.0, "×");
            let _ = writeln!(
                s,
                "- {} {}, {name}: {} — {}; {} — {}.",
                sc.services,
                lang.t("Services", "сервисов"),
                lang.t("time ≤ 2× baseline", "время ≤ 2× базы"),
                time.text,
                lang.t("peak memory ≤ 3× input", "пик памяти ≤ 3× входа"),
                memory.text
            );
            let what = |t: &str| {
                format!("{} {}, {name}: {t}", sc.services, lang.t("Services", "сервисов"))
            };
            summary.push((what(lang.t("hook time ≤ 2× baseline", "время хука ≤ 2× базы")), time));
            summary.push((what(lang.t("peak memory ≤ 3× input", "пик памяти ≤ 3× входа")), memory));
        }
    }
    let by = |n: usize| scales.iter().find(|s| s.services == n);
    if let (Some(a), Some(b)) = (by(1_000), by(10_000)) {
        for (name, x, y) in [
            (lang.t("first", "первый"), &a.first, &b.first),
            (lang.t("steady", "установившийся"), &a.steady, &b.steady),
        ] {
            let scaling = median(&walls(&y.hook)) / median(&walls(&x.hook));
            let base = median(&walls(&y.baseline)) / median(&walls(&x.baseline));
            let v = at_most(lang, scaling, 12.0, "×");
            let _ = writeln!(
                s,
                "- {}, {name}: {} ({}: {base:.2}×).",
                lang.t("Scaling 1k → 10k ≤ 12×", "Рост 1k → 10k ≤ 12×"),
                v.text,
                lang.t("baseline", "база")
            );
            summary.push((
                format!(
                    "{}, {name}",
                    lang.t("hook scaling 1k → 10k ≤ 12×", "рост времени хука 1k → 10k ≤ 12×")
                ),
                v,
            ));
        }
    } else {
        let _ = writeln!(
            s,
            "- {}",
            lang.t(
                "Scaling 1k → 10k: not measured in this run.",
                "Рост 1k → 10k: в этом прогоне не измерялся."
            )
        );
    }
    let _ = writeln!(s);
}

fn rtt_median(t: &TargetRtts) -> f64 {
    median(&t.rtt_us)
}

fn rtt_row(s: &mut String, owned: usize, p: &Pair) {
    let (sp, k) = (&p.speaker, &p.kernel);
    let _ = writeln!(
        s,
        "| {owned} | {} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} | {} / {} |",
        p.family,
        rtt_median(sp),
        rtt_median(k),
        rtt_median(sp) / rtt_median(k),
        quantile(&sp.rtt_us, 0.99),
        quantile(&k.rtt_us, 0.99),
        sp.lost,
        k.lost
    );
}

fn neighbour_section(s: &mut String, summary: &mut Summary, n: &wire::Results, lang: Lang) {
    let _ = writeln!(s, "## 2. {}\n", lang.t("ARP/NDP answer latency", "Задержка ответов ARP/NDP"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "A client namespace and two node namespaces on one bridge (veth pairs). In each \
                 node the kernel answers for the node's own addresses and a speaker, on the same \
                 interface, answers for load-balancer addresses: node a's speaker owns one \
                 address per family, node m's owns {1} (the two measured plus IPv6 addresses of \
                 2001:db8:1::/64; the IPv4 documentation ranges are too small). A prober on a raw \
                 socket in the client (`xtask bench-probe`) sends one ARP request or neighbour \
                 solicitation at a time, alternating over the eight targets, {0} requests per \
                 target, and times each answer on the wire. Every ratio compares medians measured \
                 in that alternation.",
                n.latency_count, n.many
            ),
            Lang::Ru => format!(
                "Пространство имен клиента и два пространства имен узлов на одном мосту (пары \
                 veth). В каждом узле ядро отвечает за собственные адреса узла, а спикер на том \
                 же интерфейсе — за адреса балансировщика: спикер узла a владеет одним адресом на \
                 семейство, спикер узла m — {1} адресами (двумя измеряемыми и адресами IPv6 из \
                 2001:db8:1::/64; диапазоны IPv4 для документации слишком малы). Пробник на сыром \
                 сокете в клиенте (`xtask bench-probe`) посылает по одному ARP-запросу или запросу \
                 соседа, чередуя восемь целей, по {0} запросов на цель, и измеряет время каждого \
                 ответа на проводе. Каждое отношение сравнивает медианы, измеренные в этом \
                 чередовании.",
                n.latency_count, n.many
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("owned addresses", "адресов у спикера", Align::Right),
            ("family", "семейство", Align::Left),
            ("speaker, µs (median)", "спикер, мкс (медиана)", Align::Right),
            ("kernel, µs (median)", "ядро, мкс (медиана)", Align::Right),
            ("speaker / kernel", "спикер / ядро", Align::Right),
            ("speaker p99, µs", "спикер p99, мкс", Align::Right),
            ("kernel p99, µs", "ядро p99, мкс", Align::Right),
            ("lost (speaker / kernel)", "потеряно (спикер / ядро)", Align::Right),
        ],
    );
    for p in &n.few {
        rtt_row(s, 2, p);
    }
    for p in &n.many_pairs {
        rtt_row(s, n.many, p);
    }
    let _ = writeln!(
        s,
        "\n{}",
        lang.t(
            "The answers take microseconds, so the figures are sensitive to the machine's load: \
             the kernel answers in its receive path, while the speaker is a user-space process \
             that must first be scheduled, which on two cores shared with builds can take longer \
             than the answer itself. The speaker/kernel ratio is therefore an upper bound of what \
             a quiet node shows.",
            "Ответы занимают микросекунды, поэтому значения чувствительны к нагрузке машины: ядро \
             отвечает прямо в пути приема, а спикер — процесс пользовательского пространства, \
             которому сначала нужно получить процессор, и на двух ядрах, разделяемых со сборками, \
             это может занять больше, чем сам ответ. Поэтому отношение спикер/ядро — верхняя \
             оценка того, что покажет ненагруженный узел."
        )
    );
    let _ = writeln!(s, "\n### {}\n", lang.t("Targets", "Цели"));
    for p in &n.few {
        let v = at_most(lang, rtt_median(&p.speaker) / rtt_median(&p.kernel), 1.5, "×");
        let _ = writeln!(
            s,
            "- {}: {} — {}.",
            p.family,
            lang.t("median ≤ 1.5× the kernel", "медиана ≤ 1.5× ядра"),
            v.text
        );
        summary.push((
            format!(
                "{}: {}",
                p.family,
                lang.t("answer median ≤ 1.5× the kernel", "медиана ответа ≤ 1.5× ядра")
            ),
            v,
        ));
    }
    for (few, many) in n.few.iter().zip(&n.many_pairs) {
        // Both speakers were asked in the same alternation, so their medians compare directly;
        // each node's kernel, shown for reference, tells how much the two paths differ.
        let direct = rtt_median(&many.speaker) / rtt_median(&few.speaker);
        let kernels = rtt_median(&many.kernel) / rtt_median(&few.kernel);
        let v = at_most(lang, direct, 1.1, "×");
        let _ = writeln!(
            s,
            "- {}: {} {} — {} ({}: {kernels:.2}×).",
            many.family,
            n.many,
            lang.t(
                "owned addresses ≤ 1.1× the one-address median",
                "адресов ≤ 1.1× медианы для одного адреса"
            ),
            v.text,
            lang.t(
                "the same ratio of the two nodes' kernels",
                "то же отношение для ядер двух узлов"
            )
        );
        summary.push((
            format!(
                "{}: {} {}",
                many.family,
                n.many,
                lang.t("addresses ≤ 1.1× one address", "адресов ≤ 1.1× одного адреса")
            ),
            v,
        ));
    }

    let _ = writeln!(s, "\n### {}\n", lang.t("Request rate", "Частота запросов"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "Requests to one address at a fixed rate for {:.1} s each step, speaker and kernel \
                 one after the other at every step; an answer counts if it arrives until 200 ms \
                 after the last request. *Send time* is how long the prober needed to send the \
                 step (above {:.1} s the prober, not the answerer, was the limit).",
                n.rate_step_s, n.rate_step_s
            ),
            Lang::Ru => format!(
                "Запросы к одному адресу с постоянной частотой, {:.1} с на шаг, на каждом шаге \
                 поочередно спикер и ядро; ответ засчитывается, если пришел не позже 200 мс после \
                 последнего запроса. *Время отправки* — сколько пробнику понадобилось на шаг \
                 (больше {:.1} с — пределом был пробник, а не отвечающий).",
                n.rate_step_s, n.rate_step_s
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("family", "семейство", Align::Left),
            ("requests/s", "запросов/с", Align::Right),
            ("speaker answered", "спикер ответил", Align::Right),
            ("kernel answered", "ядро ответило", Align::Right),
            ("send time, speaker s", "время отправки, спикер, с", Align::Right),
            ("send time, kernel s", "время отправки, ядро, с", Align::Right),
        ],
    );
    for r in &n.rates {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} % | {:.2} % | {:.2} | {:.2} |",
            r.family,
            r.rate,
            100.0 * (1.0 - wire::loss(&r.speaker)),
            100.0 * (1.0 - wire::loss(&r.kernel)),
            r.speaker.send_seconds,
            r.kernel.send_seconds
        );
    }
    let _ = writeln!(s);
    for family in ["IPv4", "IPv6"] {
        let best = |pick: fn(&wire::RateStep) -> &super::probe::RateOutput| {
            n.rates
                .iter()
                .filter(|r| r.family == family && wire::loss(pick(r)) < 0.01)
                .map(|r| r.rate)
                .max()
        };
        let show = |v: Option<u32>| {
            v.map_or_else(|| lang.t("none", "нет").to_owned(), |r| format!("{r}/s"))
        };
        let _ = writeln!(
            s,
            "- {family}: {}: {} {}, {} {}.",
            lang.t("highest rate answered with < 1 % loss", "наибольшая частота с потерями < 1 %"),
            lang.t("speaker", "спикер"),
            show(best(|r| &r.speaker)),
            lang.t("kernel", "ядро"),
            show(best(|r| &r.kernel))
        );
    }
    let _ = writeln!(s);
}

fn failover_section(s: &mut String, summary: &mut Summary, trials: &[Trial], lang: Lang) {
    let times: Vec<f64> = trials.iter().map(|t| t.takeover_s).collect();
    let moved = trials.iter().filter(|t| t.entry_moved).count();
    let _ = writeln!(s, "## 3. {}\n", lang.t("Failover", "Переключение при отказе"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "{} independent trials, each in a fresh lab: a client and three nodes on one bridge, \
                 a speaker on each node with real gossip (authenticated, default timings) and the \
                 file source; 192.0.2.10 is owned by node a with backups [b, c3] and resolved by \
                 the client to a. Then `kill -9` of a's speaker (no goodbye, like a crashed node). \
                 Measured: from the kill until the prober in the client receives b's gratuitous \
                 ARP for the address (both times from the same clock). Afterwards the client \
                 kernel's own neighbour entry pointed to b in {moved} of {} trials.",
                trials.len(),
                trials.len()
            ),
            Lang::Ru => format!(
                "{} независимых попыток, каждая в новом стенде: клиент и три узла на одном мосту, \
                 на каждом узле спикер с настоящим gossip (с аутентификацией, тайминги по \
                 умолчанию) и файловым источником; 192.0.2.10 принадлежит узлу a с резервными \
                 [b, c3], клиент разрешил его в a. Затем `kill -9` спикера a (без прощания, как \
                 при падении узла). Измеряется время от kill до получения пробником в клиенте \
                 gratuitous ARP узла b для этого адреса (оба времени по одним часам). После этого \
                 собственная запись соседа в ядре клиента указывала на b в {moved} из {} попыток.",
                trials.len(),
                trials.len()
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("trials", "попыток", Align::Right),
            ("min, s", "мин, с", Align::Right),
            ("median, s", "медиана, с", Align::Right),
            ("p90, s", "p90, с", Align::Right),
            ("max, s", "макс, с", Align::Right),
        ],
    );
    let min = times.iter().copied().fold(f64::NAN, f64::min);
    let _ = writeln!(
        s,
        "| {} | {min:.3} | {:.3} | {:.3} | {:.3} |\n",
        times.len(),
        median(&times),
        quantile(&times, 0.9),
        max(&times)
    );
    let med = at_most(lang, median(&times), 1.0, " s");
    let worst = at_most(lang, max(&times), 2.0, " s");
    let _ = writeln!(s, "- {}: {}.", lang.t("median ≤ 1 s", "медиана ≤ 1 с"), med.text);
    let _ = writeln!(s, "- {}: {}.\n", lang.t("max ≤ 2 s", "максимум ≤ 2 с"), worst.text);
    summary.push((lang.t("failover median ≤ 1 s", "медиана переключения ≤ 1 с").to_owned(), med));
    summary.push((lang.t("failover max ≤ 2 s", "максимум переключения ≤ 2 с").to_owned(), worst));

    let _ = writeln!(
        s,
        "### {}\n",
        lang.t(
            "Published figures of other L2 announcers",
            "Опубликованные значения других L2-анонсеров"
        )
    );
    let rows: [(&str, &str, &str); 3] = match lang {
        Lang::En => [
            (
                "MetalLB (L2, memberlist)",
                "Failure detection by memberlist, then gratuitous ARP. The docs promise a fail-over \
                 \"within a few seconds\" for clients that honour gratuitous ARP; the pull request \
                 that introduced memberlist measured about 3 s untuned; users report 10 s and more \
                 (memberlist suspicion timeouts plus the resync, and tens of seconds in older \
                 versions). Sources: [MetalLB layer 2 concepts](https://metallb.universe.tf/concepts/layer2/), \
                 [metallb#527](https://github.com/metallb/metallb/pull/527), \
                 [metallb#767](https://github.com/metallb/metallb/issues/767), \
                 [metallb#524](https://github.com/metallb/metallb/issues/524) (35–45 s, v0.8.3).",
                "≈3 s best case, 10 s+ typical",
            ),
            (
                "Cilium L2 announcements",
                "Per-Service Kubernetes leases: defaults `leaseDuration` 15 s, `leaseRenewDeadline` \
                 5 s, `leaseRetryPeriod` 2 s; the docs give a fail-over between \
                 `leaseDuration - leaseRenewDeadline` and `leaseDuration + leaseRenewDeadline`, \
                 that is 10–20 s with the defaults. Source: \
                 [Cilium L2 announcements, Leases](https://docs.cilium.io/en/stable/network/l2-announcements/).",
                "10–20 s (defaults)",
            ),
            (
                "kube-vip (ARP, leader election)",
                "Kubernetes lease leader election (`vip_leaseduration`, `vip_renewdeadline`, \
                 `vip_retryperiod`); the docs state an average fail-over of about 3 s, depending \
                 on the infrastructure. Source: \
                 [kube-vip, Troubleshooting ARP](https://kube-vip.io/docs/troubleshooting/arp).",
                "≈3 s (average, docs)",
            ),
        ],
        Lang::Ru => [
            (
                "MetalLB (L2, memberlist)",
                "Отказ обнаруживает memberlist, затем gratuitous ARP. Документация обещает \
                 переключение «в пределах нескольких секунд» для клиентов, принимающих \
                 gratuitous ARP; pull request, который ввел memberlist, намерил около 3 с без \
                 настройки; пользователи сообщают о 10 с и более (таймауты подозрения memberlist \
                 плюс пересинхронизация, в старых версиях — десятки секунд). Источники: \
                 [MetalLB layer 2 concepts](https://metallb.universe.tf/concepts/layer2/), \
                 [metallb#527](https://github.com/metallb/metallb/pull/527), \
                 [metallb#767](https://github.com/metallb/metallb/issues/767), \
                 [metallb#524](https://github.com/metallb/metallb/issues/524) (35–45 с, v0.8.3).",
                "≈3 с в лучшем случае, обычно 10 с и более",
            ),
            (
                "Cilium L2 announcements",
                "Лизы Kubernetes на каждый сервис: по умолчанию `leaseDuration` 15 с, \
                 `leaseRenewDeadline` 5 с, `leaseRetryPeriod` 2 с; документация дает \
                 переключение от `leaseDuration - leaseRenewDeadline` до \
                 `leaseDuration + leaseRenewDeadline`, то есть 10–20 с по умолчанию. Источник: \
                 [Cilium L2 announcements, Leases](https://docs.cilium.io/en/stable/network/l2-announcements/).",
                "10–20 с (по умолчанию)",
            ),
            (
                "kube-vip (ARP, выбор лидера)",
                "Выбор лидера через лизы Kubernetes (`vip_leaseduration`, `vip_renewdeadline`, \
                 `vip_retryperiod`); документация называет среднее время переключения около 3 с в \
                 зависимости от инфраструктуры. Источник: \
                 [kube-vip, Troubleshooting ARP](https://kube-vip.io/docs/troubleshooting/arp).",
                "≈3 с (в среднем, по документации)",
            ),
        ],
    };
    table_header(
        s,
        lang,
        &[
            ("implementation", "реализация", Align::Left),
            ("mechanism and source", "механизм и источник", Align::Left),
            ("published fail-over", "опубликованное время", Align::Left),
        ],
    );
    let _ = writeln!(
        s,
        "| {} | {} | {:.2} s |",
        lang.t("this module (measured here)", "этот модуль (измерено здесь)"),
        lang.t(
            "SWIM-style gossip between the speakers; the first live backup takes over at once.",
            "gossip в стиле SWIM между спикерами; первый живой резервный узел берет адрес сразу."
        ),
        median(&times)
    );
    for (name, how, figure) in rows {
        let _ = writeln!(s, "| {name} | {how} | {figure} |");
    }
    let _ = writeln!(
        s,
        "\n{}\n",
        lang.t(
            "The other figures are published ones, from other setups; only the first row was measured here.",
            "Остальные значения — опубликованные, на других стендах; здесь измерена только первая строка."
        )
    );
}

fn memory_section(s: &mut String, summary: &mut Summary, memory: &[Memory], lang: Lang) {
    let _ = writeln!(s, "## 4. {}\n", lang.t("Speaker memory", "Память спикера"));
    let _ = writeln!(
        s,
        "{}\n",
        lang.t(
            "`VmRSS` (resident now) and `VmHWM` (peak resident) of the speaker process from \
             `/proc`, file source, after it owned its addresses and answered requests (part 2).",
            "`VmRSS` (резидентная сейчас) и `VmHWM` (пиковая резидентная) процесса спикера из \
             `/proc`, файловый источник, после того как он взял адреса и ответил на запросы \
             (часть 2)."
        )
    );
    table_header(
        s,
        lang,
        &[
            ("owned addresses", "адресов у спикера", Align::Right),
            ("VmRSS, MiB", "VmRSS, MiB", Align::Right),
            ("VmHWM, MiB", "VmHWM, MiB", Align::Right),
        ],
    );
    for m in memory {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} |",
            m.owned,
            m.rss_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0
        );
    }
    if let Some(m) = memory.iter().max_by_key(|m| m.owned) {
        let v = at_most(lang, m.hwm_kib as f64 / 1024.0, 20.0, " MiB");
        let _ = writeln!(
            s,
            "\n- {} {}: {}.\n",
            lang.t("peak ≤ 20 MiB with", "пик ≤ 20 MiB при"),
            m.owned,
            v.text
        );
        summary.push((
            format!(
                "{} {}",
                lang.t("speaker peak memory ≤ 20 MiB with", "пик памяти спикера ≤ 20 MiB при"),
                m.owned
            ),
            v,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
