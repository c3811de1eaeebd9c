# String building: str(), list append + join, += on a local string, methods.
def build():
    parts = []
    for i in range(600000):
        parts.append(str(i))
    s = ",".join(parts)
    t = ""
    for i in range(600000):
        t += "x"
    words = s.split(",")
    n = 0
    for w in words:
        if w.startswith("1"):
            n += 1
    return len(s) + len(t) + n + len(s.upper().replace("1", "one"))

result = build()
print(result)
