"""Write data/orders.txt: made-up e-commerce order product names, one per line.

The chapter trains on order product names (订单商品名称); this generator writes text of
the same kind, Chinese and English mixed: brand, product, attributes, spec, pack size.
Every brand and phrase here is invented for this file, and the output is deterministic
(a fixed seed), so `python data/generate_orders.py` always rewrites the same bytes.
"""
from __future__ import annotations

import random
from pathlib import Path

SEED = 19
TARGET_CHARS = 300_000

BRANDS = [
    "山禾", "青柚生活", "MORNING LEAF", "北岸", "Luma露玛", "禾木家", "SUNNY BAY", "小雀", "Kova科瓦", "云栖",
    "NORTHPINE", "橙屿", "PureMint", "一方", "Odeon欧德", "暖岛", "FIELD&CO", "甜麦", "Vela维拉", "谷雨农场",
    "ZENO", "月光猫", "BlueHaven", "木槿", "Tasko泰斯科", "白桦", "HOMEWAY", "初见", "Nova诺瓦", "川味坊",
]

CATEGORIES = {
    "食品": (["有机燕麦片", "手工挂面", "低糖酸奶", "坚果礼盒", "黑芝麻糊", "冻干草莓", "红枣枸杞茶", "全麦吐司",
              "Greek Yogurt", "Dark Chocolate", "Granola Mix", "Instant Coffee"],
             ["原味", "无蔗糖", "高纤维", "低脂", "即食", "独立小包装", "non-GMO", "organic", "0添加"],
             ["g", "kg", "ml", "L"], ["袋", "盒", "罐", "瓶"]),
    "日用": (["洗衣凝珠", "抽纸", "厨房湿巾", "除菌洗手液", "牙膏", "竹纤维毛巾", "保鲜袋", "垃圾袋",
              "Dish Soap", "Paper Towels", "Laundry Pods"],
             ["家庭装", "加厚", "可降解", "温和配方", "薰衣草香", "无香", "3层", "抗菌", "fragrance-free"],
             ["抽", "片", "ml", "只"], ["包", "提", "箱", "卷"]),
    "数码": (["无线蓝牙耳机", "快充数据线", "充电宝", "机械键盘", "无线鼠标", "手机壳", "钢化膜", "智能手环",
              "USB-C Hub", "Wireless Charger", "Bluetooth Speaker"],
             ["降噪", "Type-C", "20W快充", "磁吸", "轻薄", "RGB背光", "防摔", "IPX5防水", "dual-mode"],
             ["mAh", "m", "W", "GB"], ["个", "条", "套", "件"]),
    "服饰": (["纯棉T恤", "加绒卫衣", "直筒牛仔裤", "羊毛袜", "速干运动裤", "羽绒马甲", "针织开衫", "帆布鞋",
              "Hoodie", "Running Shoes", "Crew Socks"],
             ["男款", "女款", "宽松", "修身", "oversize", "黑色", "燕麦色", "藏青", "秋冬款", "春夏新款"],
             ["码", "cm"], ["件", "双", "条", "套"]),
    "美妆": (["玻尿酸精华", "氨基酸洁面乳", "防晒霜", "补水面膜", "卸妆水", "润唇膏", "护手霜", "身体乳",
              "Vitamin C Serum", "Sunscreen SPF50", "Micellar Water"],
             ["敏感肌", "保湿", "清爽型", "SPF50+ PA++++", "无酒精", "滋润", "fragrance-free", "旅行装"],
             ["ml", "g", "片"], ["支", "瓶", "盒", "片"]),
    "家居": (["记忆棉枕头", "四件套", "收纳箱", "香薰蜡烛", "陶瓷马克杯", "不粘锅", "保温杯", "折叠晾衣架",
              "Storage Bin", "Scented Candle", "Ceramic Mug"],
             ["北欧风", "304不锈钢", "加大号", "可折叠", "奶油白", "大容量", "防滑", "ins风", "minimalist"],
             ["cm", "L", "ml", "件"], ["个", "套", "只", "组"]),
}

SIZES = {"g": [50, 100, 200, 250, 500, 750], "kg": [1, 2, 2.5, 5], "ml": [30, 50, 100, 250, 500, 1000],
         "L": [1, 1.5, 2, 5], "抽": [100, 120, 130], "片": [10, 20, 30, 80], "只": [50, 100], "mAh": [5000, 10000, 20000],
         "m": [1, 1.5, 2], "W": [20, 33, 65], "GB": [64, 128, 256], "码": ["S", "M", "L", "XL", "XXL"],
         "cm": [30, 40, 45, 60, 180]}
PROMOS = ["【官方旗舰】", "【限时特惠】", "【顺丰包邮】", "【新品】", "【买2送1】", "[Best Seller]", "[Free Shipping]", ""]
PACKS = [1, 2, 3, 4, 6, 10, 12, 24]


def product_name(rng: random.Random) -> str:
    category = rng.choice(list(CATEGORIES))
    products, attributes, units, pack_units = CATEGORIES[category]
    unit = rng.choice(units)
    size = rng.choice(SIZES.get(unit, [1, 2, 3]))
    attrs = " ".join(rng.sample(attributes, k=rng.randint(1, 2)))
    pack = rng.choice(PACKS)
    parts = [rng.choice(PROMOS) + rng.choice(BRANDS), rng.choice(products), attrs, f"{size}{unit}"]
    if pack > 1:
        parts.append(rng.choice([f"*{pack}{rng.choice(pack_units)}", f"x{pack}", f"{pack}{rng.choice(pack_units)}装"]))
    return " ".join(parts).strip()


def generate(target_chars: int = TARGET_CHARS, seed: int = SEED) -> str:
    rng = random.Random(seed)
    lines, size = [], 0
    while size < target_chars:
        line = product_name(rng)
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = Path(__file__).with_name("orders.txt")
    out.write_text(generate(), encoding="utf-8")
    print(f"wrote {out} ({len(out.read_text(encoding='utf-8'))} characters)")
