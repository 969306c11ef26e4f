export const metadata = { title: "sam2enc in a Next.js app" };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body style={{ font: "15px system-ui, sans-serif", margin: "1rem" }}>{children}</body>
    </html>
  );
}
